"""What undoing an operation changes: a pure function from the operation's
audit rows, what happened since and each person's current state to the
changes, tested without a database (``tests/enrollments/test_undo_decide.py``).

A person is one account (by user id) or, for someone without an account, one
email key. The state to restore is the ``state_before`` of the person's first
row in the operation; the mode and the cohort are restored only where the
operation recorded them (``mode_before`` set, or a cohort that moved), and so
is the access period (``access_from``/``access_until``, from the first row's
``*_before``) where a row recorded one (a row with the four period columns
empty recorded the state only: the period is left as it is). A person whose
state was changed by something later (a later audit row, or a state, mode,
cohort or period that is no longer the one the operation left) is left alone
and listed.

Undoing an expiry (or an unenroll whose period has ended since) gives the
person their access back: enrolled again with the start they had and no end.
Restoring the end as it was would leave them *expired*, and the next expiry
run would end them again at once: the undo would not stick. No end is the one
period that gives the access back without inventing a date; the course team
sets a new end with Extend access. Only a person the undo makes active again
gets this: an undo that keeps someone enrolled (of a renewal, an extension)
puts their period back as it was, ended or not. The plan lists them
(``end_removed``) so the preview and the confirmation can say so, and the
undo's audit rows record the period before and after, so that undoing the undo
puts the ended period back and ends the enrollment again.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from enrollment_site.lib.emails import email_key

from .. import reasons
from ..models import Notification, Source, State
from .batch_decide import Message

PersonKey = tuple[str, object]  # ("user", user id) or ("email", email key)

ENROLLMENT_STATES = (State.ENROLLED, State.UNENROLLED)
ALLOWANCE_STATES = (State.ALLOWED, State.ALLOWED_AUTO)


@dataclass(frozen=True)
class OperationRow:
    """One audit row of the operation undone."""

    id: int
    created: datetime.datetime
    key: PersonKey
    user_id: int | None
    identifier: str
    state_before: str
    state_after: str
    mode_before: str = ""
    mode_after: str = ""
    cohort_before: str = ""
    cohort_after: str = ""
    access_from_before: datetime.datetime | None = None
    access_from_after: datetime.datetime | None = None
    access_until_before: datetime.datetime | None = None
    access_until_after: datetime.datetime | None = None

    @property
    def records_period(self) -> bool:
        return any(v is not None for v in (self.access_from_before, self.access_from_after, self.access_until_before, self.access_until_after))


@dataclass(frozen=True)
class LaterChange:
    """The newest audit row for a person that is not the operation's."""

    id: int
    created: datetime.datetime
    actor: str
    source: str


@dataclass(frozen=True)
class Current:
    """A person's state in the course now. ``email`` is the address their
    invitation goes to (an account's, or the one typed), ``name`` how an email
    greets them."""

    state: str
    mode: str = ""
    cohort: str = ""
    email: str = ""
    name: str = ""
    access_from: datetime.datetime | None = None
    access_until: datetime.datetime | None = None

    @property
    def period(self) -> Period:
        return (self.access_from, self.access_until)


# (access_from, access_until); None on either side for unbounded.
Period = tuple[datetime.datetime | None, datetime.datetime | None]


def period_text(period: Period) -> str:
    """A period as the preview and the audit say it: "1 Jan 2026 – 31 Dec 2026", "… – no end"."""
    start, end = (f"{timezone.localtime(v):%-d %b %Y}" if v is not None else None for v in period)
    if start is None and end is None:
        return _("no period")
    return f"{start or '…'} – {end or _('no end')}"


@dataclass(frozen=True)
class Restore:
    """One person put back: from ``now`` to the state (and mode and cohort,
    None where not restored) the operation found."""

    key: PersonKey
    user_id: int | None
    identifier: str
    now: Current
    state: str
    mode: str | None
    cohort: str | None
    period: Period | None = None  # None: not restored
    end_removed: bool = False  # enrolled again, the end that had passed removed (``_reopened``)

    @property
    def description(self) -> str:
        """What undo restores, as the undo preview says it (in the active language)."""
        parts = []
        if self.state != self.now.state:
            parts.append(f"{State(self.now.state).label} → {State(self.state).label}")
        if self.mode is not None and self.mode != self.now.mode:
            parts.append(_("mode %(before)s → %(after)s") % {"before": self.now.mode or "—", "after": self.mode})
        if self.cohort is not None and self.cohort != self.now.cohort:
            nothing = pgettext("cohort", "none")
            parts.append(_("cohort %(before)s → %(after)s") % {"before": self.now.cohort or nothing, "after": self.cohort or nothing})
        if self.period is not None and self.period != self.now.period:
            parts.append(_("access %(before)s → %(after)s") % {"before": period_text(self.now.period), "after": period_text(self.period)})
        return "; ".join(parts)


@dataclass(frozen=True)
class LeftAlone:
    identifier: str
    why: str


@dataclass
class UndoRequest:
    course_id: int
    operation_id: uuid.UUID
    undo_operation_id: uuid.UUID
    actor_id: int | None
    now: datetime.datetime
    default_mode: str
    email_students: bool = False
    reason: str = ""


@dataclass
class UndoPlan:
    """What undo does: ``restores`` (with the rows to write), ``left_alone``
    (changed since, with why), ``unchanged`` (already as before)."""

    restores: list[Restore] = field(default_factory=list)
    left_alone: list[LeftAlone] = field(default_factory=list)
    unchanged: int = 0
    enrollments_to_upsert: list[dict] = field(default_factory=list)
    enrollment_users_to_delete: list[int] = field(default_factory=list)
    allowances_to_upsert: list[dict] = field(default_factory=list)
    allowance_keys_to_delete: list[str] = field(default_factory=list)
    # user id → cohort name to put them in ("" for none)
    cohorts: dict[int, str] = field(default_factory=dict)
    audits: list[dict] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    # People enrolled again whose period had ended: their end is removed, so that the access is theirs again.
    end_removed: list[str] = field(default_factory=list)


def undo_decide(
    *,
    request: UndoRequest,
    rows: Sequence[OperationRow],
    later: Mapping[PersonKey, LaterChange],
    current: Mapping[PersonKey, Current],
    cohorts: set[str],
) -> UndoPlan:
    """Decide what undoing the operation of ``rows`` (in the order they were
    written) does. ``later`` holds, per person, the newest audit row written
    after the person's last row of the operation by anything else;
    ``current`` each person's state now (a person missing there is in state
    none); ``cohorts`` the names of the course's cohorts. The inputs are not
    modified."""
    plan = UndoPlan()
    first: dict[PersonKey, OperationRow] = {}
    last: dict[PersonKey, OperationRow] = {}
    cohort_recorded: dict[PersonKey, bool] = {}
    period_recorded: dict[PersonKey, bool] = {}
    for row in rows:
        first.setdefault(row.key, row)
        last[row.key] = row
        # Rows that record a mode record the cohort as it was too (blank for none);
        # others record a cohort only where it moved.
        cohort_recorded[row.key] = cohort_recorded.get(row.key, False) or bool(row.mode_before) or row.cohort_before != row.cohort_after
        period_recorded[row.key] = period_recorded.get(row.key, False) or (row.records_period and row.user_id is not None)

    for key, start in first.items():
        end = last[key]
        now = current.get(key, Current(State.NONE))
        change = later.get(key)
        if change is not None:
            # Kept in English (an undo job stores it), shown in the reader's language (reasons.LEFT_ALONE_*).
            when, source = f"{change.created:%Y-%m-%d %H:%M}", reasons.source_label_english(change.source)
            why = (reasons.LEFT_ALONE_CHANGED_BY % {"actor": change.actor, "when": when, "source": source} if change.actor
                   else reasons.LEFT_ALONE_CHANGED_BY_SYSTEM % {"when": when, "source": source})
            plan.left_alone.append(LeftAlone(start.identifier, why))
            continue
        if now.state != end.state_after or (end.mode_after and end.mode_after != now.mode and now.state in ENROLLMENT_STATES) or (
            cohort_recorded[key] and end.cohort_after != now.cohort
        ) or (period_recorded[key] and now.state in ENROLLMENT_STATES and (end.access_from_after, end.access_until_after) != now.period):
            plan.left_alone.append(LeftAlone(start.identifier, reasons.LEFT_ALONE_OUTSIDE))
            continue
        mode = start.mode_before or None
        cohort = start.cohort_before if cohort_recorded[key] and start.user_id is not None else None
        if cohort and cohort not in cohorts:
            plan.left_alone.append(LeftAlone(start.identifier, reasons.LEFT_ALONE_NO_COHORT % {"cohort": cohort}))
            continue
        period = (start.access_from_before, start.access_until_before) if period_recorded[key] else None
        reopened = _reopened(start, now, period, request.now)
        restore = Restore(key, start.user_id, start.identifier, now, start.state_before, mode, cohort,
                          reopened if reopened is not None else period, end_removed=reopened is not None)
        if not restore.description:
            plan.unchanged += 1
            continue
        _write(plan, request, restore)
    return plan


def _reopened(start: OperationRow, now: Current, period: Period | None, moment: datetime.datetime) -> Period | None:
    """For a person the undo enrolls again whose period to restore (``period``,
    or None: the one they have now) has ended by ``moment``: that period
    without its end, so that the next expiry run does not end them again at
    once. None for anyone else (their period is restored as decided)."""
    if start.user_id is None or start.state_before != State.ENROLLED or now.state == State.ENROLLED:
        return None
    access_from, access_until = period if period is not None else now.period
    if access_until is None or access_until > moment:
        return None
    return (access_from, None)


def _write(plan: UndoPlan, request: UndoRequest, restore: Restore) -> None:
    now, state, user_id = restore.now, restore.state, restore.user_id
    mode_after = restore.mode if restore.mode is not None else now.mode
    cohort_after = restore.cohort if restore.cohort is not None else now.cohort
    period_after = restore.period if restore.period is not None else now.period
    if user_id is not None:
        if state in ENROLLMENT_STATES:
            if state != now.state or mode_after != now.mode or period_after != now.period:
                plan.enrollments_to_upsert.append({
                    "user_id": user_id, "course_id": request.course_id, "is_active": state == State.ENROLLED,
                    "mode": mode_after or request.default_mode, "source": Source.UNDO, "created": request.now, "updated": request.now,
                    "access_from": period_after[0], "access_until": period_after[1],
                })
            if restore.end_removed:
                plan.end_removed.append(restore.identifier)
        elif now.state in ENROLLMENT_STATES:
            plan.enrollment_users_to_delete.append(user_id)
        if restore.cohort is not None and restore.cohort != now.cohort:
            plan.cohorts[user_id] = restore.cohort
    key = email_key(now.email) if user_id is not None else str(restore.key[1])
    if state in ALLOWANCE_STATES:
        plan.allowances_to_upsert.append({
            "course_id": request.course_id, "email": now.email or restore.identifier, "email_key": key,
            "auto_enroll": state == State.ALLOWED_AUTO, "created_by_id": request.actor_id, "created": request.now, "used_at": None,
        })
    elif user_id is None and now.state in ALLOWANCE_STATES:
        plan.allowance_keys_to_delete.append(key)
    plan.audits.append({
        "created": request.now, "actor_id": request.actor_id, "course_id": request.course_id, "user_id": user_id,
        "identifier": restore.identifier, "state_before": now.state, "state_after": state, "source": Source.UNDO,
        "reason": request.reason, "operation_id": request.undo_operation_id, "undoes": request.operation_id,
        # Accounts record their mode and cohort, so that undoing this undo restores them as well.
        "mode_before": now.mode if user_id is not None else "", "mode_after": mode_after if user_id is not None else "",
        "cohort_before": now.cohort if user_id is not None else "", "cohort_after": cohort_after if user_id is not None else "",
        # And their period, where they have an enrollment before or after.
        **({"access_from_before": now.access_from, "access_until_before": now.access_until,
            "access_from_after": period_after[0], "access_until_after": period_after[1]} if user_id is not None else {}),
    })
    plan.restores.append(restore)
    if request.email_students and state != now.state and (now.email or user_id is None):
        plan.messages.append(_message(restore))


def _message(restore: Restore) -> Message:
    """The email saying what was restored: the one its new state is announced with."""
    email, name, state = restore.now.email or restore.identifier, restore.now.name, restore.state
    if state == State.ENROLLED:
        return Message(Notification.Kind.ENROLLED, email, name=name)
    if state in ALLOWANCE_STATES:
        return Message(Notification.Kind.ALLOWED, email, auto_enroll=state == State.ALLOWED_AUTO)
    if restore.user_id is None:
        return Message(Notification.Kind.ALLOWANCE_REMOVED, email)
    return Message(Notification.Kind.UNENROLLED, email, name=name)
