"""The decide step of a batch: what enrolling or unenrolling a list of identifiers changes.

``enrollment_batch_update`` (in ``batch.py``) reads as resolve → lock → decide
→ write → settle. This module is the decide step and the settle step, both
pure: ``batch_decide`` goes from the current states (each identifier with the
account it names, the locked enrollment and allowance rows) and the request to
the changes (rows to upsert, deactivate and delete, audit entries, outbox
messages) and one outcome per identifier; ``batch_settle`` corrects the
upserts' outcomes, audit entries and messages by what the write reported.
Neither reads a database or writes anything, so their rules are tested without
one (tests/enrollments/test_batch_decide.py), and each runs in one pass: its
cost grows with the number of identifiers, never its queries.

Why a settle step: a row that does not exist yet cannot be locked, so two
batches naming the same new person both read "not enrolled". Only the write
knows which of them enrolled the person (the unique index makes the second
wait for the first, then find its row); the other is told "already enrolled"
and neither audits nor mails a change it did not make.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from enrollment_site.lib.emails import email_key
from enrollment_site.lib.identifiers import Identifier, Kind

from ..models import Action, Notification, Outcome, State
from ..periods import UNBOUNDED, Period, PeriodRequest

ENROLL = Action.ENROLL
UNENROLL = Action.UNENROLL
ACTIONS = tuple(Action.values)


class Account(Protocol):
    """The active account an identifier names (a User, or anything shaped like one)."""

    pk: int
    username: str
    email: str

    @property
    def display_name(self) -> str: ...


class EnrollmentRow(Protocol):
    """A person's existing enrollment in the course."""

    pk: int
    is_active: bool
    mode: str


class AllowanceRow(Protocol):
    """An existing allowance for an email address in the course."""

    auto_enroll: bool


@dataclass(frozen=True, slots=True)
class PersonState:
    """The four flags Open edX clients read, for one identifier in one course.
    Immutable, so that the decide step shares one instance per combination
    (``person_state``) instead of building two per identifier."""

    user: bool = False
    enrollment: bool = False
    allowed: bool = False
    auto_enroll: bool = False

    def as_dict(self) -> dict:
        return {"enrollment": self.enrollment, "allowed": self.allowed, "user": self.user, "auto_enroll": self.auto_enroll}


_STATES = {
    (user, enrollment, allowed, auto_enroll): PersonState(user, enrollment, allowed, auto_enroll)
    for user in (False, True) for enrollment in (False, True) for allowed in (False, True) for auto_enroll in (False, True)
}
NO_STATE = _STATES[False, False, False, False]


def person_state(user: bool, enrollment: bool, allowed: bool, auto_enroll: bool) -> PersonState:
    """The shared ``PersonState`` of these flags (each a bool)."""
    return _STATES[user, enrollment, allowed, auto_enroll]


@dataclass
class IdentifierResult:
    identifier: str
    outcome: Outcome
    before: PersonState
    after: PersonState
    username: str = ""
    email: str = ""
    note: str = ""  # e.g. which identifier named the same person first

    @property
    def invalid(self) -> bool:
        return self.outcome in Outcome.ERRORS

    @property
    def is_error(self) -> bool:
        return self.invalid

    def as_api_dict(self) -> dict:
        data: dict[str, object] = {"identifier": self.identifier, "before": self.before.as_dict(), "after": self.after.as_dict()}
        if self.invalid:
            data["invalidIdentifier"] = True
        return data

    def as_row(self) -> dict:
        """What the results page and its CSV show for this identifier."""
        return {
            "identifier": self.identifier, "outcome": self.outcome, "username": self.username, "email": self.email,
            "note": self.note, "error": self.is_error,
        }


@dataclass(frozen=True)
class BatchRequest:
    """What was asked, and the values every row the batch writes carries."""

    action: str
    auto_enroll: bool
    email_students: bool
    course_id: int
    default_mode: str
    source: str
    reason: str
    operation_id: uuid.UUID
    actor_id: int | None
    now: datetime
    # The period a new or reactivated enrollment gets (what was asked, else the
    # course's default: ``periods.period_for``), and what was asked as an
    # invitation records it (a duration then counts from enrolling).
    period: Period = UNBOUNDED
    asked: PeriodRequest = PeriodRequest()


@dataclass(frozen=True, slots=True)
class Message:
    """An email for the outbox: its kind (a ``Notification.Kind``), its
    recipient and the name to greet them by ("" for someone without an account)."""

    kind: str
    email: str
    name: str = ""
    auto_enroll: bool = False
    # The period it tells of: an enrollment's, or what an invitation will give.
    access_from: datetime | None = None
    access_until: datetime | None = None
    duration_days: int | None = None


@dataclass
class Pending:
    """An upserted row's change as decided: the identifier's result and the
    audit entry and message (if any) that announce it. Whether it happens is
    known only once the write has reported (``batch_settle``)."""

    result: IdentifierResult
    audit: dict
    message: Message | None


@dataclass
class BatchChanges:
    """What a batch changes, as the write step needs it: row values for the
    bulk statements, and one result per identifier in the order given. Every
    row to upsert has its ``Pending`` change (by user id, by email key)."""

    results: list[IdentifierResult] = field(default_factory=list)
    enrollments_to_upsert: list[dict] = field(default_factory=list)
    enrollments_to_deactivate: list[int] = field(default_factory=list)  # enrollment ids
    allowances_to_upsert: list[dict] = field(default_factory=list)
    allowance_keys_to_delete: list[str] = field(default_factory=list)
    audits: list[dict] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    seen: dict[int, str] = field(default_factory=dict)  # user id → the identifier that named them first here
    enrollments_pending: dict[int, Pending] = field(default_factory=dict)
    allowances_pending: dict[str, Pending] = field(default_factory=dict)

    @property
    def writes_anything(self) -> bool:
        return bool(
            self.enrollments_to_upsert or self.enrollments_to_deactivate or self.allowances_to_upsert
            or self.allowance_keys_to_delete or self.audits or self.messages
        )


def state_of(*, enrollment: EnrollmentRow | None, allowance: AllowanceRow | None) -> str:
    """A person's state in the course as the audit trail records it."""
    if enrollment is not None:
        return State.ENROLLED if enrollment.is_active else State.UNENROLLED
    if allowance is not None:
        return State.ALLOWED_AUTO if allowance.auto_enroll else State.ALLOWED
    return State.NONE


def flags(*, user: Account | None, enrollment: EnrollmentRow | None, allowance: AllowanceRow | None) -> PersonState:
    return _STATES[
        user is not None, enrollment is not None and bool(enrollment.is_active), allowance is not None,
        allowance is not None and bool(allowance.auto_enroll),
    ]


def batch_decide(
    *,
    request: BatchRequest,
    resolved: Sequence[tuple[Identifier, Account | None]],
    enrollments: Mapping[int, EnrollmentRow],
    allowances: Mapping[str, AllowanceRow],
    seen_before: Mapping[int, str] | None = None,
) -> BatchChanges:
    """Decide what the batch does, identifier by identifier.

    ``resolved`` pairs each distinct parsed identifier with the active account
    it names (or None); ``enrollments`` holds those accounts' enrollments in
    the course by user id, ``allowances`` the course's allowances by lower-cased
    email (of the emails named and of the accounts' addresses); ``seen_before``
    the people an earlier chunk of the same batch named (user id → identifier).

    The rules: invalid emails and unknown usernames are reported, not fatal. A
    person named twice (by username and by email, say, or in an earlier chunk)
    is handled once: the later identifier is "named twice", with the first one
    in its note and the state the person is in. On enroll an account is
    enrolled (a former enrollment reactivated, keeping its mode), either way
    with ``request.period``, and an unknown email gets an allowance with
    ``auto_enroll`` recording ``request.asked``; an active enrollment keeps
    its period; on unenroll the enrollment is
    deactivated (the row is kept, and its audit entry records the period it
    had: ``ended_period``) and any allowance removed. An invitation
    that exists with the same ``auto_enroll`` is "already invited". Only a
    change is audited, and with ``email_students`` mailed. The inputs are not
    modified. Enrollments and allowances to upsert are decided on rows that
    may change before the write (see ``batch_settle``).
    """
    changes = BatchChanges()
    seen_before = seen_before or {}
    first_results: dict[int, IdentifierResult] = {}
    removed: set[str] = set()  # allowance keys this batch deletes: gone for the identifiers after

    def allowance_of(key: str) -> AllowanceRow | None:
        return None if key in removed else allowances.get(key)

    for ident, user in resolved:
        if ident.kind == Kind.INVALID:
            changes.results.append(IdentifierResult(ident.text, Outcome.INVALID_EMAIL, NO_STATE, NO_STATE))
            continue
        if user is None and ident.kind == Kind.USERNAME:
            changes.results.append(IdentifierResult(ident.text, Outcome.NO_SUCH_USER, NO_STATE, NO_STATE))
            continue
        if user is not None and (user.pk in changes.seen or user.pk in seen_before):
            # The same person named twice (say by username and by email): handled
            # once, so that they count once in the summary and get one email.
            first = first_results.get(user.pk)
            if first is not None:
                state = first.after
            else:  # named in an earlier chunk, which has committed its change
                state = flags(user=user, enrollment=enrollments.get(user.pk), allowance=allowance_of(email_key(user.email)))
            note = f"same person as {changes.seen.get(user.pk) or seen_before[user.pk]}"
            changes.results.append(IdentifierResult(ident.text, Outcome.DUPLICATE, state, state, user.username, user.email, note))
            continue

        key = email_key(user.email) if user is not None else ident.key
        email = user.email if user is not None else ident.text
        enrollment = enrollments.get(user.pk) if user is not None else None
        allowance = allowance_of(key)
        before = flags(user=user, enrollment=enrollment, allowance=allowance)
        state_before = state_of(enrollment=enrollment, allowance=allowance)
        if user is not None:
            changes.seen[user.pk] = ident.text

        audits_before, messages_before = len(changes.audits), len(changes.messages)
        if request.action == ENROLL and user is not None:
            outcome = _enroll_account(changes, request, ident, user, enrollment, state_before)
            after = _STATES[True, True, before.allowed, before.auto_enroll]
        elif request.action == ENROLL:
            outcome = _allow_email(changes, request, ident, email, key, allowance, state_before)
            after = _STATES[False, False, True, bool(request.auto_enroll)]
        else:
            outcome = _unenroll(changes, request, ident, user, email, key, enrollment, allowance, state_before)
            if allowance is not None:
                removed.add(key)
            after = _STATES[user is not None, False, False, False]

        result = IdentifierResult(ident.text, outcome, before, after, user.username if user is not None else "", email)
        changes.results.append(result)
        if request.action == ENROLL and len(changes.audits) > audits_before:
            # An upsert: its change is the batch's only if the write says so.
            message = changes.messages[-1] if len(changes.messages) > messages_before else None
            pending = Pending(result, changes.audits[-1], message)
            if user is not None:
                changes.enrollments_pending[user.pk] = pending
            else:
                changes.allowances_pending[key] = pending
        if user is not None:
            first_results[user.pk] = result
    return changes


def _audit(request: BatchRequest, identifier: str, user_id: int | None, before: str, after: str) -> dict:
    return {
        "created": request.now, "actor_id": request.actor_id, "course_id": request.course_id, "user_id": user_id,
        "identifier": identifier, "state_before": before, "state_after": after, "source": request.source,
        "reason": request.reason, "operation_id": request.operation_id,
    }


def _enroll_account(changes, request, ident, user, enrollment, state_before) -> Outcome:
    if enrollment is not None and enrollment.is_active:
        # An active enrollment keeps its period: extending it is the learners table's action.
        return Outcome.ALREADY_ENROLLED
    # Reactivation keeps the mode the learner had; is_active and the period are updated on conflict.
    mode = enrollment.mode if enrollment is not None else request.default_mode
    period = request.period
    changes.enrollments_to_upsert.append({
        "user_id": user.pk, "course_id": request.course_id, "is_active": True, "mode": mode, "source": request.source,
        "created": request.now, "updated": request.now, "access_from": period.access_from, "access_until": period.access_until,
    })
    audit = _audit(request, ident.text, user.pk, state_before, State.ENROLLED)
    audit.update(
        access_from_before=getattr(enrollment, "access_from", None), access_until_before=getattr(enrollment, "access_until", None),
        access_from_after=period.access_from, access_until_after=period.access_until,
    )
    changes.audits.append(audit)
    if request.email_students:
        changes.messages.append(Message(
            Notification.Kind.ENROLLED, user.email, name=user.display_name, access_from=period.access_from, access_until=period.access_until,
        ))
    return Outcome.REACTIVATED if enrollment is not None else Outcome.ENROLLED


def _allow_email(changes, request, ident, email, key, allowance, state_before) -> Outcome:
    auto_enroll = request.auto_enroll
    if allowance is not None and allowance.auto_enroll == auto_enroll:
        return Outcome.ALREADY_ALLOWED
    asked = request.asked
    changes.allowances_to_upsert.append({
        "course_id": request.course_id, "email": email, "email_key": key, "auto_enroll": auto_enroll,
        "created_by_id": request.actor_id, "created": request.now, "used_at": None,
        "access_from": asked.access_from, "access_until": asked.access_until, "duration_days": asked.duration_days,
    })
    audit = _audit(request, ident.text, None, state_before, State.ALLOWED_AUTO if auto_enroll else State.ALLOWED)
    audit.update(access_from_after=asked.access_from, access_until_after=asked.access_until)
    changes.audits.append(audit)
    if request.email_students:
        changes.messages.append(Message(
            Notification.Kind.ALLOWED, email, auto_enroll=auto_enroll,
            access_from=asked.access_from, access_until=asked.access_until, duration_days=asked.duration_days,
        ))
    return Outcome.ALLOWED_AUTO if auto_enroll else Outcome.ALLOWED


def _unenroll(changes, request, ident, user, email, key, enrollment, allowance, state_before) -> Outcome:
    if enrollment is not None and enrollment.is_active:
        outcome = Outcome.UNENROLLED
        changes.enrollments_to_deactivate.append(enrollment.pk)
    elif allowance is not None:
        outcome = Outcome.ALLOWANCE_REMOVED
    else:
        return Outcome.NOT_ENROLLED
    if allowance is not None:
        changes.allowance_keys_to_delete.append(key)
    state_after = State.UNENROLLED if enrollment is not None else State.NONE
    audit = _audit(request, ident.text, user.pk if user is not None else None, state_before, state_after)
    if outcome == Outcome.UNENROLLED:
        audit.update(ended_period(enrollment))
    changes.audits.append(audit)
    if request.email_students:
        kind = Notification.Kind.UNENROLLED if outcome == Outcome.UNENROLLED else Notification.Kind.ALLOWANCE_REMOVED
        changes.messages.append(Message(kind, email, name=user.display_name if user is not None else ""))
    return outcome


def ended_period(enrollment: object) -> dict:
    """The audit's period columns for an enrollment an unenroll ends: the
    period it had, before and after alike, as the row keeps its bounds (an
    expiry records it so too). The periods report reads an ended period from
    them once the enrollment holds a new one."""
    access_from, access_until = getattr(enrollment, "access_from", None), getattr(enrollment, "access_until", None)
    return {
        "access_from_before": access_from, "access_until_before": access_until,
        "access_from_after": access_from, "access_until_after": access_until,
    }


def batch_settle(changes: BatchChanges, *, enrollments: Mapping[int, bool | None], allowances: Mapping[str, bool | None]) -> None:
    """Correct the decided upserts by what the write did, in place.

    ``enrollments`` (by user id) and ``allowances`` (by email key) hold the
    rows the upserts inserted (True) or changed (False; None where the
    database cannot tell). A row missing there was left alone: a concurrent
    batch made the same change between this batch's read and its write. The
    identifier is then "already enrolled" or "already invited", and the audit
    entry and message of the change are dropped (its maker has them). A row
    changed where the batch saw none was written meanwhile by another
    transaction in a different state, which is the state before: an inactive
    enrollment (so "enrolled again"), an invitation with the other
    ``auto_enroll``."""
    dropped: set[int] = set()  # ids of the audit entries and messages of changes not made here
    for user_id, pending in changes.enrollments_pending.items():
        result = pending.result
        if user_id not in enrollments:
            result.outcome = Outcome.ALREADY_ENROLLED
            result.before = replace(result.before, enrollment=True)
            dropped.update((id(pending.audit), id(pending.message)))
        elif enrollments[user_id] is False and result.outcome == Outcome.ENROLLED:
            result.outcome = Outcome.REACTIVATED
            pending.audit["state_before"] = State.UNENROLLED
    for key, pending in changes.allowances_pending.items():
        result = pending.result
        if key not in allowances:
            result.outcome = Outcome.ALREADY_ALLOWED
            result.before = replace(result.after)
            dropped.update((id(pending.audit), id(pending.message)))
        elif allowances[key] is False and not result.before.allowed:
            result.before = replace(result.after, auto_enroll=not result.after.auto_enroll)
            pending.audit["state_before"] = State.ALLOWED if result.after.auto_enroll else State.ALLOWED_AUTO
    if dropped:
        changes.audits = [a for a in changes.audits if id(a) not in dropped]
        changes.messages = [m for m in changes.messages if id(m) not in dropped]
