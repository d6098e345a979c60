"""The decide step of a learners-table action: what it changes for each chosen enrollment.

``roster_apply`` (in ``roster.py``) reads as resolve → lock → decide → write.
``roster_decide`` is a pure function from the locked rows (each enrollment
with its learner, their cohort in the course and whether an allowance exists
for their email) and the request to the changes: the batch's own change set
(``BatchChanges``: reactivations, deactivations, allowance removals, audit
entries, outbox messages), written by the batch's write step, plus the mode
and cohort changes only the learners table makes. It reads no database, so
its rules are tested without one (tests/enrollments/test_roster_decide.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from enrollment_site.lib.emails import email_key

from ..models import Notification, RosterAction, State
from .batch_decide import BatchChanges, Message, ended_period

# How many refusals a result spells out; the rest are counted.
REFUSALS_LISTED = 20

# A row's outcome (RosterChanges.outcomes): a change says what it changes from ("changed:audit").
REFUSED, UNCHANGED, CHANGED = "refused", "unchanged", "changed"
# What extend does to a row (after "changed:" or "unchanged:").
EXTENDED, REACTIVATED, NOT_ENROLLED, NO_END, ENDS_LATER = "extend", "reactivate", "not_enrolled", "no_end", "ends_later"


@dataclass(frozen=True, slots=True)
class RosterRow:
    """One chosen enrollment as locked: its learner and where they stand."""

    enrollment_id: int
    user_id: int
    username: str
    email: str
    display_name: str
    account_active: bool
    is_active: bool
    mode: str
    cohort: str  # the cohort's name, "" for none
    has_allowance: bool
    access_from: datetime | None = None
    access_until: datetime | None = None


@dataclass(frozen=True)
class RosterRequest:
    """What was asked, and the values every row the action writes carries."""

    action: str
    course_id: int
    mode: str  # change_mode: the mode to change to
    cohort_id: int | None  # move_cohort: the cohort to move to, None for no cohort
    cohort_name: str  # its name ("" for no cohort)
    reason: str
    email_students: bool
    source: str
    operation_id: uuid.UUID
    actor_id: int | None
    now: datetime
    extend_days: int | None = None  # extend: days added to each end (to now, once ended)
    extend_until: datetime | None = None  # extend: the new end


@dataclass
class RosterChanges:
    """What the action changes: the batch's change set plus mode and cohort changes."""

    batch: BatchChanges = field(default_factory=BatchChanges)
    mode_ids: list[int] = field(default_factory=list)  # enrollment ids whose mode changes
    cohort_user_ids: list[int] = field(default_factory=list)  # learners whose cohort changes
    extend_ids: list[int] = field(default_factory=list)  # extend: enrollment ids given a new end (and made active)
    changed: int = 0
    unchanged: int = 0
    refused: list[str] = field(default_factory=list)
    # Each row's outcome, for a preview and its fingerprint: (row, "refused" | "unchanged" | "changed:<what it was>").
    outcomes: list[tuple[RosterRow, str]] = field(default_factory=list)


def refusal_of(row: RosterRow, action: str) -> str:
    """Why ``action`` cannot be applied to ``row`` ("" when it can)."""
    if action == RosterAction.ENROLL_AGAIN and not row.is_active and not row.account_active:
        return f"{row.username}: the account is deactivated, so it cannot be enrolled again"
    return ""


def extended_end(request: RosterRequest, row: RosterRow) -> datetime | None:
    """The end ``extend`` gives ``row``: the date asked for, or the current end
    plus the days (now plus the days once it has passed). None for a row
    without an end: it has access for good already."""
    if row.access_until is None:
        return None
    if request.extend_until is not None:
        return request.extend_until
    assert request.extend_days is not None
    return max(row.access_until, request.now) + timedelta(days=request.extend_days)


def _extend_outcome(request: RosterRequest, row: RosterRow) -> tuple[str, datetime | None]:
    """What extend does to ``row``: (outcome key, new end), or a refusal's reason as the key with None."""
    ended = row.access_until is not None and row.access_until <= request.now
    if not row.is_active and not ended:
        return f"{UNCHANGED}:{NOT_ENROLLED}", None  # unenrolled by someone: extending would enroll them again
    end = extended_end(request, row)
    if end is None:
        return f"{UNCHANGED}:{NO_END}", None
    if end <= request.now:  # a queued job's date, passed meanwhile
        return f"{row.username}: the new end of access has passed already", None
    if row.access_from is not None and end <= row.access_from:
        return f"{row.username}: the new end comes before the start of access ({row.access_from:%Y-%m-%d})", None
    if end <= row.access_until:  # type: ignore[operator]  # not None: end is None without one
        return f"{UNCHANGED}:{ENDS_LATER}", None
    return f"{CHANGED}:{REACTIVATED if ended else EXTENDED}", end


def roster_decide(*, request: RosterRequest, rows: Sequence[RosterRow]) -> RosterChanges:
    """Decide what the action does to each locked row, in one pass.

    - unenroll: an active enrollment is deactivated (the row is kept) and an
      allowance for the learner's email removed, as the batch does; an inactive
      one is unchanged.
    - enroll again: an inactive enrollment is reactivated with its mode; an
      active one is unchanged; a deactivated account is refused.
    - change mode: the enrollment takes ``request.mode`` (active or not); one
      already in it is unchanged.
    - move to a cohort: the learner joins ``request.cohort_name`` ("" = leaves
      their cohort); one already there is unchanged.
    - extend: the end of access moves to ``extended_end`` and an ended period
      (expired) is active again; a row without an end, one that already ends
      later, or one unenrolled before its period ended is unchanged; a new end
      before the row's start is refused. No email.

    Every change is audited with the state, mode and cohort before and after
    (an unenroll and an extension with the period too);
    unenroll and enroll again email the learner when ``email_students`` (as the
    batch does; mode and cohort changes send nothing). Refused rows get a reason
    in ``refused`` and no change; whether the others go ahead is the caller's choice."""
    changes = RosterChanges()
    batch = changes.batch
    for row in rows:
        why = refusal_of(row, request.action)
        if why:
            changes.refused.append(why)
            changes.outcomes.append((row, REFUSED))
            continue
        state = State.ENROLLED if row.is_active else State.UNENROLLED
        audit = _audit(request, row, state)
        if request.action == RosterAction.EXTEND:
            key, end = _extend_outcome(request, row)
            if end is None and not key.startswith(UNCHANGED):
                changes.refused.append(key)
                changes.outcomes.append((row, REFUSED))
                continue
            if end is None:
                changes.unchanged += 1
                changes.outcomes.append((row, key))
                continue
            changes.extend_ids.append(row.enrollment_id)
            audit.update(state_after=State.ENROLLED, access_from_before=row.access_from, access_from_after=row.access_from,
                         access_until_before=row.access_until, access_until_after=end)
            batch.audits.append(audit)
            changes.changed += 1
            changes.outcomes.append((row, key))
            continue
        if request.action == RosterAction.UNENROLL:
            if not row.is_active:
                changes.unchanged += 1
                changes.outcomes.append((row, UNCHANGED))
                continue
            batch.enrollments_to_deactivate.append(row.enrollment_id)
            if row.has_allowance:
                batch.allowance_keys_to_delete.append(email_key(row.email))
            audit.update(state_after=State.UNENROLLED, **ended_period(row))
            if request.email_students:
                batch.messages.append(Message(Notification.Kind.UNENROLLED, row.email, name=row.display_name))
        elif request.action == RosterAction.ENROLL_AGAIN:
            if row.is_active:
                changes.unchanged += 1
                changes.outcomes.append((row, UNCHANGED))
                continue
            # An upsert on the existing row: only is_active and updated change.
            batch.enrollments_to_upsert.append({
                "user_id": row.user_id, "course_id": request.course_id, "is_active": True, "mode": row.mode,
                "created": request.now, "updated": request.now,
            })
            audit["state_after"] = State.ENROLLED
            if request.email_students:
                batch.messages.append(Message(Notification.Kind.ENROLLED, row.email, name=row.display_name))
        elif request.action == RosterAction.CHANGE_MODE:
            if row.mode == request.mode:
                changes.unchanged += 1
                changes.outcomes.append((row, UNCHANGED))
                continue
            changes.mode_ids.append(row.enrollment_id)
            audit["mode_after"] = request.mode
        else:  # MOVE_COHORT
            if row.cohort == request.cohort_name:
                changes.unchanged += 1
                changes.outcomes.append((row, UNCHANGED))
                continue
            changes.cohort_user_ids.append(row.user_id)
            audit["cohort_after"] = request.cohort_name
        batch.audits.append(audit)
        changes.changed += 1
        was = row.mode if request.action == RosterAction.CHANGE_MODE else row.cohort if request.action == RosterAction.MOVE_COHORT else ""
        changes.outcomes.append((row, f"{CHANGED}:{was}"))
    return changes


def _audit(request: RosterRequest, row: RosterRow, state: str) -> dict:
    """The row's audit entry, as if nothing changed; the caller sets what does."""
    return {
        "created": request.now, "actor_id": request.actor_id, "course_id": request.course_id, "user_id": row.user_id,
        "identifier": row.username, "state_before": state, "state_after": state, "source": request.source,
        "reason": request.reason, "operation_id": request.operation_id,
        "mode_before": row.mode, "mode_after": row.mode, "cohort_before": row.cohort, "cohort_after": row.cohort,
    }
