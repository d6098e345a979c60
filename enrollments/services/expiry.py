"""The end of a period of access: expiry and renewal (the beat task
``enrollments.tasks.expire_enrollments``).

Every active enrollment whose ``access_until`` has passed is either ended the
way an unenroll ends it (the row kept, ``is_active`` cleared, audited with
source ``expiry``, the learner told through the outbox) or, when a higher app
says it recurs (an organisation's "re-enroll every N months"), given a new
period that starts where the old one ended (audited with source ``renewal``,
the learner told). Each run gives each course one operation id for its
expiries and one for its renewals, so either can be undone from the audit log.

Rows are claimed a chunk per transaction with ``FOR UPDATE SKIP LOCKED``:
several workers (or a run that overlaps the next) share the due rows without
waiting on each other and without two of them taking the same row, and an
ended row is no longer due, so a second run finds nothing. What was ended or
renewed is what the UPDATE returned; the audit and outbox rows are written
from that, in the same transaction. On PostgreSQL a chunk costs a fixed few
statements however many rows it holds (the ending is one statement: UPDATE,
audit INSERT and outbox INSERT as data-modifying CTEs). SQLite takes the
database's write lock before its reads instead (``sqlite_write_lock``).
"""

from __future__ import annotations

import calendar
import datetime
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone

from courses.models import Course
from enrollment_site.lib.bulk import array_cursor, bulk_insert, sqlite_write_lock
from enrollment_site.lib.tasks import enqueue_on_commit

from .. import reasons
from ..models import Enrollment, EnrollmentAudit, Notification, Source, State
from ..notifications import MessageBuilder, PeriodMessages, locale_fields

EXPIRY_CHUNK = 5000

Due = tuple[int, int, int, datetime.datetime | None, datetime.datetime]  # id, user id, course id, access_from, access_until
# A renewal source: given the due enrollments (id, user id, course id), the
# number of months each recurring one renews for (ids missing: not recurring).
RenewalSource = Callable[[list[tuple[int, int, int]]], dict[int, int]]
_renewal_sources: list[RenewalSource] = []


def renewal_source_register(source: RenewalSource) -> None:
    """Let a higher app (organisations) say which due enrollments recur: the
    expiry run asks every registered source once per chunk. Registered from an
    ``AppConfig.ready``; registering the same function twice has no effect."""
    if source not in _renewal_sources:
        _renewal_sources.append(source)


@dataclass
class ExpiryRun:
    """What one run did: how many enrollments it ended and renewed, and the
    operation id of each course's expiries and renewals (for the audit log's undo)."""

    ended: int = 0
    renewed: int = 0
    run_id: uuid.UUID = field(default_factory=uuid.uuid4)
    ended_operations: dict[int, uuid.UUID] = field(default_factory=dict)
    renewed_operations: dict[int, uuid.UUID] = field(default_factory=dict)

    def operation(self, course_id: int, source: str) -> uuid.UUID:
        """The run's operation id for ``course_id`` and ``source`` (expiry or
        renewal): derived from the run's id, so every chunk of the run agrees."""
        return uuid.uuid5(self.run_id, f"{source}:{course_id}")


def enrollments_expire(*, now: datetime.datetime | None = None, chunk: int = EXPIRY_CHUNK) -> ExpiryRun:
    """End (or renew, when recurring) every active enrollment whose
    ``access_until`` is at or before ``now``; returns what this run did.
    Idempotent: an ended or renewed row is no longer due. Safe on several
    workers at once: each row is taken by one of them (SKIP LOCKED), audited
    once and announced once. Queues the outbox's delivery when anything was
    written. Must run outside a transaction (each chunk commits on its own)."""
    now = now or timezone.now()
    run = ExpiryRun()
    while True:
        with transaction.atomic():
            claimed = _expire_chunk(run, now=now, chunk=chunk)
        if claimed < chunk:
            break
    if run.ended or run.renewed:
        from ..tasks import send_notifications

        enqueue_on_commit(send_notifications)
    return run


def _expire_chunk(run: ExpiryRun, *, now: datetime.datetime, chunk: int) -> int:
    """Claim up to ``chunk`` due rows, renew the recurring ones and end the
    rest; returns how many rows were claimed."""
    sqlite_write_lock(Enrollment)
    due = _claim_due(now=now, limit=chunk)
    if not due:
        return 0
    months = _renewal_months(due)
    renewing = [row for row in due if row[0] in months]
    ending = [row for row in due if row[0] not in months]
    courses = Course.objects.in_bulk({row[2] for row in due})
    if ending:
        _end(run, ending, courses=courses, now=now)
    if renewing:
        _renew(run, renewing, months=months, courses=courses, now=now)
    return len(due)


def _claim_due(*, now: datetime.datetime, limit: int) -> list[Due]:
    # The partial index enrollment_expiry_due holds exactly the active rows
    # with an end, in (access_until, id) order: the oldest due rows first.
    qs = Enrollment.objects.filter(is_active=True, access_until__lte=now).order_by("access_until", "id")
    if connection.vendor == "postgresql":
        # SKIP LOCKED: a row another worker is ending is its, not ours to wait for.
        qs = qs.select_for_update(skip_locked=True)
    return list(qs.values_list("id", "user_id", "course_id", "access_from", "access_until")[:limit])


def _renewal_months(due: list[Due]) -> dict[int, int]:
    months: dict[int, int] = {}
    if not _renewal_sources:
        return months
    keys = [(row[0], row[1], row[2]) for row in due]
    for source in _renewal_sources:
        months.update(source(keys))
    return months


# --- ending ---------------------------------------------------------------------------------------

# One statement ends a chunk on PostgreSQL: the UPDATE (guarded again, so a
# row that is no longer due is not touched), its audit rows and its outbox rows
# from what the UPDATE returned. The operation id and the subject of each course
# come in as arrays (a few per chunk, not one per row).
_END_SQL = """
WITH ended AS (
    UPDATE enrollments_enrollment e SET is_active = false, updated = %(now)s
    WHERE e.id = ANY(%(ids)s) AND e.is_active AND e.access_until <= %(now)s
    RETURNING e.id, e.user_id, e.course_id, e.access_from, e.access_until
),
ops AS (
    SELECT * FROM unnest(%(course_ids)s::bigint[], %(operation_ids)s::uuid[], %(subjects)s::text[]) AS o(course_id, operation_id, subject)
),
audit AS (
    INSERT INTO enrollments_enrollmentaudit (created, actor_id, course_id, user_id, identifier, state_before, state_after, source, reason,
        operation_id, mode_before, mode_after, cohort_before, cohort_after, undoes,
        access_from_before, access_from_after, access_until_before, access_until_after)
    SELECT %(now)s, NULL, ended.course_id, ended.user_id, u.username, %(enrolled)s, %(unenrolled)s, %(source)s, %(reason)s,
        ops.operation_id, '', '', '', '', NULL, ended.access_from, ended.access_from, ended.access_until, ended.access_until
    FROM ended JOIN accounts_user u ON u.id = ended.user_id JOIN ops ON ops.course_id = ended.course_id
    ORDER BY ended.id
),
outbox AS (
    INSERT INTO enrollments_notification (operation_id, kind, recipient, recipient_key, subject, body, name, auto_enroll, reason,
        course_id, status, attempts, created, message_id, error)
    SELECT ops.operation_id, %(kind)s, u.email, u.email_key, ops.subject, '',
        left(coalesce(nullif(trim(u.first_name || ' ' || u.last_name), ''), u.username), 150), false, '',
        ended.course_id, %(pending)s, 0, %(now)s, '', ''
    FROM ended JOIN accounts_user u ON u.id = ended.user_id JOIN ops ON ops.course_id = ended.course_id
    WHERE u.email <> ''
    ORDER BY ended.id
    ON CONFLICT DO NOTHING
)
SELECT course_id, count(*) FROM ended GROUP BY course_id
"""

EXPIRY_REASON = reasons.EXPIRY


def _end(run: ExpiryRun, rows: list[Due], *, courses: dict[int, Course], now: datetime.datetime) -> None:
    course_ids = sorted({row[2] for row in rows})
    operations = {course_id: run.operation(course_id, Source.EXPIRY) for course_id in course_ids}
    if connection.vendor == "postgresql":
        with array_cursor() as cursor:
            cursor.execute(_END_SQL, {
                "now": now, "ids": [row[0] for row in rows], "course_ids": course_ids,
                "operation_ids": [operations[c] for c in course_ids],
                "subjects": [MessageBuilder(courses[c]).subject(Notification.Kind.EXPIRED) for c in course_ids],
                "enrolled": State.ENROLLED, "unenrolled": State.UNENROLLED, "source": Source.EXPIRY, "reason": EXPIRY_REASON,
                "kind": Notification.Kind.EXPIRED, "pending": Notification.Status.PENDING,
            })
            ended_per_course = dict(cursor.fetchall())
    else:
        ended_per_course = _end_elsewhere(rows, operations=operations, courses=courses, now=now)
    for course_id, count in ended_per_course.items():
        run.ended += count
        run.ended_operations[course_id] = operations[course_id]


def _end_elsewhere(rows: list[Due], *, operations: dict[int, uuid.UUID], courses: dict[int, Course], now: datetime.datetime) -> dict[int, int]:
    """Not PostgreSQL: the same writes in a few statements, under the write
    lock the chunk took before its reads (so the rows read are the rows ended)."""
    ids = [row[0] for row in rows]
    Enrollment.objects.filter(pk__in=ids, is_active=True, access_until__lte=now).update(is_active=False, updated=now)
    users = _users({row[1] for row in rows})
    audits, messages = [], []
    builders = {course_id: MessageBuilder(course) for course_id, course in courses.items()}
    ended: dict[int, int] = {}
    for _id, user_id, course_id, access_from, access_until in rows:
        user = users[user_id]
        ended[course_id] = ended.get(course_id, 0) + 1
        audits.append(_audit_row(user, course_id=course_id, operation_id=operations[course_id], now=now, source=Source.EXPIRY,
                                 state_after=State.UNENROLLED, reason=EXPIRY_REASON, before=(access_from, access_until),
                                 after=(access_from, access_until)))
        if user.email:
            messages.append(builders[course_id].expired(email=user.email, operation_id=operations[course_id], name=user.display_name))
    bulk_insert(EnrollmentAudit, audits)
    bulk_insert(Notification, messages, ignore_conflicts=True)
    return ended


# --- renewing -------------------------------------------------------------------------------------


def next_period(*, access_until: datetime.datetime, months: int, now: datetime.datetime) -> tuple[datetime.datetime, datetime.datetime]:
    """The period that follows one ending at ``access_until`` for an
    enrollment renewed every ``months`` months: from the old end, ``months``
    later; periods that have ended meanwhile too (the task did not run for a
    while) are skipped to the one that holds ``now``."""
    start = access_until
    end = add_months(start, months)
    while end <= now:
        start, end = end, add_months(end, months)
    return start, end


def add_months(moment: datetime.datetime, months: int) -> datetime.datetime:
    """``moment`` ``months`` calendar months later, on the same day and time
    of day in the site's time zone (the month's last day when it is shorter:
    31 January plus one month is 28 or 29 February)."""
    local = timezone.localtime(moment)
    index = local.month - 1 + months
    year, month = local.year + index // 12, index % 12 + 1
    return local.replace(year=year, month=month, day=min(local.day, calendar.monthrange(year, month)[1]))


RENEWAL_REASON = reasons.RENEWAL

_RENEW_SQL = """
UPDATE enrollments_enrollment e SET access_from = r.access_from, access_until = r.access_until, updated = %s
FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[]) AS r(id, access_from, access_until)
WHERE e.id = r.id AND e.is_active AND e.access_until <= %s
RETURNING e.id
"""


def _renew(run: ExpiryRun, rows: list[Due], *, months: dict[int, int], courses: dict[int, Course], now: datetime.datetime) -> None:
    periods = {row[0]: next_period(access_until=row[4], months=months[row[0]], now=now) for row in rows}
    if connection.vendor == "postgresql":
        ids = list(periods)
        with array_cursor() as cursor:
            cursor.execute(_RENEW_SQL, [now, ids, [periods[i][0] for i in ids], [periods[i][1] for i in ids], now])
            renewed = {row_id for (row_id,) in cursor.fetchall()}
    else:
        # Under the chunk's write lock: the rows read are the rows renewed.
        changed = [Enrollment(pk=i, access_from=start, access_until=end, updated=now) for i, (start, end) in periods.items()]
        Enrollment.objects.bulk_update(changed, ["access_from", "access_until", "updated"])
        renewed = set(periods)
    users = _users({row[1] for row in rows if row[0] in renewed})
    messages = PeriodMessages()
    audits, notes = [], []
    for row_id, user_id, course_id, access_from, access_until in rows:
        if row_id not in renewed:
            continue
        operation_id = run.renewed_operations.setdefault(course_id, run.operation(course_id, Source.RENEWAL))
        user, (start, end) = users[user_id], periods[row_id]
        audits.append(_audit_row(user, course_id=course_id, operation_id=operation_id, now=now, source=Source.RENEWAL,
                                 state_after=State.ENROLLED, reason=RENEWAL_REASON, before=(access_from, access_until), after=(start, end)))
        if user.email:
            notes.append(messages.row(Notification.Kind.RENEWED, course=courses[course_id], user=user, until=end,
                                      operation_id=operation_id, now=now))
    bulk_insert(EnrollmentAudit, audits)
    bulk_insert(Notification, notes, ignore_conflicts=True)
    run.renewed += len(audits)


# --- shared -------------------------------------------------------------------------------------


def _users(ids: Iterable[int]) -> dict:
    from django.contrib.auth import get_user_model

    fields = ("id", "username", "email", "email_key", "first_name", "last_name", *locale_fields())
    return get_user_model().objects.only(*fields).in_bulk(list(ids))


def _audit_row(user, *, course_id: int, operation_id: uuid.UUID, now: datetime.datetime, source: str, state_after: str, reason: str,
               before: tuple, after: tuple) -> dict:
    return {
        "created": now, "actor_id": None, "course_id": course_id, "user_id": user.pk, "identifier": user.username,
        "state_before": State.ENROLLED, "state_after": state_after, "source": source, "reason": reason, "operation_id": operation_id,
        "access_from_before": before[0], "access_until_before": before[1], "access_from_after": after[0], "access_until_after": after[1],
    }
