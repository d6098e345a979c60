"""Batch enrollment: enroll or unenroll a list of usernames and emails in one course.

Every batch runs in a fixed number of SQL queries whatever its size: users,
enrollments and allowances are read with one query each, and every kind of
write is one bulk statement. ``enrollment_batch_update`` reads as resolve →
lock → decide → write; the decide step is the pure ``batch_decide`` (in
``batch_decide.py``), and what the upserts report settles it
(``batch_settle``) before anything is audited or mailed. Emails are written to
the outbox in the same transaction and delivered by a task after commit
(``outbox.py``).

Concurrent batches: existing rows are locked before they are read, so a batch
that waits for another sees its changes. New rows cannot be locked; the
enrollment and allowance upserts leave a row another batch has just written
alone and say so, and the batch reports that person as already enrolled or
invited. Each change is thus audited and mailed once, by the batch that made
it, and each caller is told what its own batch did.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.selectors import users_by_identifier
from accounts.types import Actor
from courses.models import Course
from enrollment_site.lib import lookups  # noqa: F401 (registers __any_of)
from enrollment_site.lib.bulk import array_cursor, bulk_insert, bulk_upsert_changed
from enrollment_site.lib.emails import email_key
from enrollment_site.lib.gc_pause import without_gc
from enrollment_site.lib.identifiers import Identifier, Kind, parse_identifiers
from enrollment_site.lib.tasks import enqueue_on_commit

from ..models import Allowance, Enrollment, EnrollmentAudit, Notification, Outcome, Source
from ..notifications import MessageBuilder
from ..periods import UNBOUNDED, Period, PeriodRequest, period_for
from .batch_decide import ACTIONS, UNENROLL, Account, BatchChanges, BatchRequest, IdentifierResult, Message, batch_decide, batch_settle
from .locks import course_write_lock


@dataclass
class BatchResult:
    course: Course
    action: str
    auto_enroll: bool
    email_students: bool
    operation_id: uuid.UUID
    results: list[IdentifierResult] = field(default_factory=list)
    period: Period = UNBOUNDED  # what a new or reactivated enrollment got

    @property
    def summary(self) -> dict[Outcome, int]:
        return dict(Counter(r.outcome for r in self.results))


class TooManyIdentifiers(ValidationError):
    pass


def check_identifier_count(count: int) -> None:
    cap = settings.ENROLLMENT_MAX_IDENTIFIERS
    if count > cap:
        raise TooManyIdentifiers(
            ngettext(
                "%(count)s identifier is more than the %(cap)s one batch may hold. Split the list and try again; nothing was changed.",
                "%(count)s identifiers are more than the %(cap)s one batch may hold. Split the list and try again; nothing was changed.",
                count,
            ) % {"count": number_format(count, force_grouping=True), "cap": number_format(cap, force_grouping=True)}
        )


@without_gc  # tens of thousands of objects built per batch: enrollment_site/lib/gc_pause.py
@transaction.atomic
def enrollment_batch_update(
    *,
    course: Course,
    identifiers: str | list[str],
    action: str,
    auto_enroll: bool,
    email_students: bool,
    actor: Actor,
    reason: str = "",
    source: str = Source.BATCH,
    operation_id: uuid.UUID | None = None,
    seen_users: dict[int, str] | None = None,
    expected_fingerprint: str | None = None,
    period: PeriodRequest | None = None,
) -> BatchResult:
    """Enroll or unenroll a list of usernames and emails in one course.

    Returns one result per distinct identifier (in the order given) with its
    state before and after and its outcome. A person named twice (by username
    and by email, say) is handled once: later identifiers for them are "named
    twice", with a note naming the first. ``seen_users`` (user id → the
    identifier that named them) carries that across the chunks of one long
    batch; it is updated in place. Unknown emails become allowances
    on enroll (``auto_enroll`` decides whether activation enrolls them) and lose
    their allowance on unenroll; unknown usernames and invalid emails are
    reported, not fatal. Unenrolling keeps the enrollment row. Every change is
    audited; with ``email_students`` each changed person gets one email, sent
    from the outbox after commit. The number of queries does not depend on the
    number of identifiers.

    Outcomes, audit entries and emails are those of the changes this call
    made: against a concurrent batch naming the same people, each change is
    made, audited and mailed once, and the other batch reports "already
    enrolled" or "already invited".

    ``period`` (checked by ``periods.period_request``; enroll only) is the
    period asked for: a new or reactivated enrollment gets it (without it, the
    course's default, ``periods.period_for``), an active one keeps its own, and
    an invitation records it (a duration then counts from enrolling).

    With ``expected_fingerprint`` (a preview's, ``batch_preview.py``) the
    batch is applied only if what it decides under the lock is what the
    preview showed; otherwise it raises ``PreviewStale`` carrying the new
    preview, and nothing is written.
    """
    if action not in ACTIONS:
        raise ValidationError(_("Unknown action %(action)s; use 'enroll' or 'unenroll'.") % {"action": repr(action)})
    asked = batch_period_check(action=action, period=period)
    parsed = parse_identifiers(identifiers)
    check_identifier_count(len(parsed))
    actor = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    now = timezone.now()
    request = BatchRequest(
        action=action, auto_enroll=auto_enroll, email_students=email_students, course_id=course.pk,
        default_mode=course.default_mode, source=source, reason=reason, operation_id=operation_id or uuid.uuid4(),
        actor_id=actor.pk if actor is not None else None, now=now, period=period_for(course, asked, now=now), asked=asked,
    )
    # The course's write lock before the reads, so that the state decided on is
    # still the state written to, and concurrent batches queue instead of deadlocking.
    course_write_lock([course.pk])
    resolved = _resolve(parsed)
    enrollments, allowances = _lock(course=course, resolved=resolved)
    changes = batch_decide(request=request, resolved=resolved, enrollments=enrollments, allowances=allowances, seen_before=seen_users)
    if expected_fingerprint is not None:
        from .batch_preview import preview_check

        preview_check(course=course, request=request, changes=changes, expected=expected_fingerprint)
    batch_changes_write(course=course, request=request, changes=changes)
    if seen_users is not None:
        seen_users.update(changes.seen)
    return BatchResult(
        course=course, action=action, auto_enroll=auto_enroll, email_students=email_students,
        operation_id=request.operation_id, results=changes.results, period=request.period,
    )


def batch_period_check(*, action: str, period: PeriodRequest | None) -> PeriodRequest:
    """The period a batch asks for ({} for none); a period on an unenroll is
    refused (ValidationError naming the field given), as it changes nothing."""
    asked = period or PeriodRequest()
    # NO_PERIOD names no field and means nothing on an unenroll: let it pass.
    field_name = next((name for name in ("access_from", "access_until", "duration_days") if getattr(asked, name) is not None), None)
    if action == UNENROLL and field_name is not None:
        raise ValidationError({field_name: _("A period only applies to enroll: leave it blank to unenroll.")})
    return asked


# --- resolve: identifiers to active accounts, two queries at most ----------------------

def _resolve(identifiers: list[Identifier]) -> list[tuple[Identifier, Account | None]]:
    """Each identifier with the active account it names, or None (the case
    rules are ``accounts.selectors.users_by_identifier``'s)."""
    return users_by_identifier(identifiers, as_rows=True)  # type: ignore[return-value]


# --- lock: the rows the batch may change, one query each ----------------------------------

@dataclass(slots=True)
class LockedEnrollment:
    """An existing enrollment as the decide step reads it (``batch_decide.EnrollmentRow``)."""

    pk: int
    is_active: bool
    mode: str
    access_from: datetime | None
    access_until: datetime | None


@dataclass(slots=True)
class LockedAllowance:
    """An existing allowance as the decide step reads it (``batch_decide.AllowanceRow``)."""

    auto_enroll: bool


def _lock(
    *, course: Course, resolved: list[tuple[Identifier, Account | None]], for_update: bool = True,
) -> tuple[dict[int, LockedEnrollment], dict[str, LockedAllowance]]:
    """The course's enrollments of the accounts named (by user id) and its
    allowances for the emails named and the accounts' addresses (by email key),
    locked until the batch commits (read only, without ``for_update``, for a
    preview that writes nothing). Plain values, not model instances: a batch
    of 10,000 reads as many rows, and building an instance each cost more
    than the query."""
    enrollment_rows = Enrollment.objects.select_for_update() if for_update else Enrollment.objects.all()
    allowance_rows = Allowance.objects.select_for_update() if for_update else Allowance.objects.all()
    user_ids = sorted({u.pk for _, u in resolved if u is not None})
    # Lock the existing rows in user-id order, so that two overlapping batches
    # queue behind each other instead of deadlocking or losing an update.
    enrollments = {
        user_id: LockedEnrollment(pk, is_active, mode, access_from, access_until)
        for pk, user_id, is_active, mode, access_from, access_until in enrollment_rows
        .filter(course=course, user_id__any_of=user_ids)
        .order_by("user_id")
        .values_list("id", "user_id", "is_active", "mode", "access_from", "access_until")
    } if user_ids else {}

    email_keys = {ident.key for ident, _ in resolved if ident.kind == Kind.EMAIL}
    email_keys |= {email_key(u.email) for _, u in resolved if u is not None}
    allowances = (
        {
            key: LockedAllowance(auto_enroll)
            for key, auto_enroll in allowance_rows
            .filter(course=course, email_key__any_of=email_keys)
            .order_by("email_key")
            .values_list("email_key", "auto_enroll")
        }
        if email_keys
        else {}
    )
    return enrollments, allowances


# --- write: one bulk statement per kind of change ---------------------------------------------

def batch_changes_write(*, course: Course, request: BatchRequest, changes: BatchChanges) -> None:
    """Write what a batch decided, one bulk statement per kind of change, and
    queue its emails after commit. The upserts report what they did, which
    settles the outcomes, audit entries and messages (``batch_settle``) before
    those are written. Rows go in key order, so that concurrent batches wait
    for each other's new rows in one order and never deadlock. The learners
    table's actions write theirs through it too (``roster.py``), so both
    change, audit and mail alike."""
    # A reactivation gets the period the rows carry (rows without one, the learners table's, leave it as it was).
    enrollment_rows = sorted(changes.enrollments_to_upsert, key=lambda row: row["user_id"])
    period_fields = ["access_from", "access_until"] if enrollment_rows and "access_until" in enrollment_rows[0] else []
    enrolled = bulk_upsert_changed(
        Enrollment, enrollment_rows,
        unique_fields=["user", "course"], update_fields=["is_active", "updated", *period_fields], changed="is_active", key="user",
    )
    if changes.enrollments_to_deactivate:
        Enrollment.objects.filter(pk__any_of=changes.enrollments_to_deactivate).update(is_active=False, updated=request.now)
    allowance_rows = sorted(changes.allowances_to_upsert, key=lambda row: row["email_key"])
    asked_fields = ["access_from", "access_until", "duration_days"] if allowance_rows and "duration_days" in allowance_rows[0] else []
    allowed = bulk_upsert_changed(
        Allowance, allowance_rows,
        unique_fields=["course", "email_key"], update_fields=["auto_enroll", "created_by", *asked_fields], changed="auto_enroll", key="email_key",
    )
    batch_settle(changes, enrollments=enrolled, allowances=allowed)
    if changes.allowance_keys_to_delete:
        Allowance.objects.filter(course=course, email_key__any_of=changes.allowance_keys_to_delete).delete()
    bulk_insert(EnrollmentAudit, changes.audits)
    if changes.messages:
        outbox_write(MessageBuilder(course), changes.messages, request)
        from ..tasks import send_notifications

        enqueue_on_commit(send_notifications, str(request.operation_id))


# The outbox rows of a batch, built by PostgreSQL from one array per message
# field: the subject (the same for every message of a kind) is joined in by
# kind rather than sent ten thousand times, and no row dict is built per message.
_OUTBOX_INSERT = """
    INSERT INTO enrollments_notification (operation_id, kind, recipient, recipient_key, subject, body, name, auto_enroll, reason,
                                          course_id, status, attempts, created, message_id, error, access_from, access_until, duration_days)
    SELECT %(operation_id)s, kind, m.recipient, m.recipient_key, s.subject, '', left(m.name, 150), m.auto_enroll, %(reason)s,
           %(course_id)s, %(status)s, 0, %(created)s, '', '', m.access_from, m.access_until, m.duration_days
    FROM unnest(%(kinds)b::text[], %(recipients)b::text[], %(keys)b::text[], %(names)b::text[], %(auto_enroll)b::boolean[],
                %(access_from)b::timestamptz[], %(access_until)b::timestamptz[], %(duration_days)b::integer[])
         WITH ORDINALITY AS m(kind, recipient, recipient_key, name, auto_enroll, access_from, access_until, duration_days, n)
    JOIN unnest(%(subject_kinds)b::text[], %(subjects)b::text[]) AS s(kind, subject) USING (kind)
    ORDER BY m.n
    ON CONFLICT DO NOTHING
"""


def outbox_write(builder: MessageBuilder, messages: list[Message], request: BatchRequest) -> None:
    """Write ``messages`` to the outbox, one row each, in one statement; a
    message already written for the operation (same recipient and kind) is
    skipped. The rows are those ``_outbox_rows`` builds, whichever the database."""
    if connection.vendor != "postgresql":
        bulk_insert(Notification, _outbox_rows(builder, messages, request), ignore_conflicts=True)
        return
    kinds = sorted({m.kind for m in messages})
    with array_cursor() as cursor:
        cursor.execute(_OUTBOX_INSERT, {
            "operation_id": request.operation_id, "reason": request.reason, "course_id": builder.course.pk,
            "status": Notification.Status.PENDING, "created": builder.now,
            "kinds": [m.kind for m in messages], "recipients": [m.email for m in messages],
            "keys": [email_key(m.email) for m in messages], "names": [m.name for m in messages],
            "auto_enroll": [m.auto_enroll for m in messages],
            "access_from": [m.access_from for m in messages], "access_until": [m.access_until for m in messages],
            "duration_days": [m.duration_days for m in messages],
            "subject_kinds": kinds, "subjects": [builder.subject(kind) for kind in kinds],
        })


def _outbox_rows(builder: MessageBuilder, messages: list[Message], request: BatchRequest) -> list[dict]:
    """The outbox rows of the messages the batch decided to send."""
    greeted: dict[str, Callable[..., dict[str, Any]]] = {
        Notification.Kind.ENROLLED: builder.enrolled,
        Notification.Kind.UNENROLLED: builder.unenrolled,
        Notification.Kind.ALLOWANCE_REMOVED: builder.allowance_removed,
    }
    operation_id, reason = request.operation_id, request.reason
    return [
        {
            **(
                builder.allowed(email=m.email, auto_enroll=m.auto_enroll, operation_id=operation_id, reason=reason)
                if m.kind == Notification.Kind.ALLOWED
                else greeted[m.kind](email=m.email, operation_id=operation_id, name=m.name, reason=reason)
            ),
            "access_from": m.access_from, "access_until": m.access_until, "duration_days": m.duration_days,
        }
        for m in messages
    ]
