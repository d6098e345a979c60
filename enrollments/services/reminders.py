"""Expiry reminders (the beat task ``enrollments.tasks.remind_expiring``).

A course with ``expiry_reminder_days`` set (null: off) tells each learner
whose access ends within that many days, once per enrollment and period: the
statement that claims a row also sets its ``reminded_until`` to the
``access_until`` it reminds of, and only claims rows where the two differ, so
a second run (or a second worker at the same moment) finds nothing, while a
period extended or renewed since gets its own reminder. With
``expiry_reminder_team`` the course's team (admins and staff) gets one summary
per run listing whose access ends, rather than one email per learner.

An enrollment whose end the expiry run will renew rather than end (an
organisation's "re-enroll every N months") is not reminded: its access does
not end. A higher app says whose do (``renewing_source_register``), as a
query the claim leaves out, asked afresh each run rather than a flag stored on
the enrollment: a flag would have to be cleared by every path that stops a
renewal (the rule edited or switched off, the assignment removed, an undo of
what made the enrollment), while the query is what the expiry run itself asks
(``renewal_source_register``), so the two cannot disagree. A row left out is
not marked either, so once its renewal stops, the next run reminds it.

A chunk costs the same few statements however many rows it holds: the claim,
the learners, the courses, the course teams and one outbox INSERT; a run adds
what the renewing sources ask once (two small queries when nothing recurs).
"""

from __future__ import annotations

import datetime
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import Exists, F, Max, OuterRef, Q, QuerySet
from django.utils import timezone

from courses.models import Course, CourseRole
from enrollment_site.lib.bulk import bulk_insert, sqlite_write_lock
from enrollment_site.lib.tasks import enqueue_on_commit

from ..models import Enrollment, Notification
from ..notifications import PeriodMessages, locale_fields

REMINDER_CHUNK = 5000

Claimed = tuple[int, int, int, datetime.datetime]  # enrollment id, user id, course id, access_until

# A renewing source: the people whose enrollment in a course the expiry run
# would renew rather than end, as a queryset (of any model) with ``user_id``
# and ``course_id`` columns; None when there are none.
RenewingSource = Callable[[], QuerySet | None]
_renewing_sources: list[RenewingSource] = []


def renewing_source_register(source: RenewingSource) -> None:
    """Let a higher app (organisations) say whose access does not end, so that
    the reminder scan leaves them out: asked once per run, its query joined
    into every chunk's claim. Registered from an ``AppConfig.ready``, beside
    the expiry run's ``renewal_source_register`` and answering the same
    question; registering the same function twice has no effect."""
    if source not in _renewing_sources:
        _renewing_sources.append(source)


@dataclass
class ReminderRun:
    """What one run did: reminders to learners, summaries to course teams."""

    learners: int = 0
    team_summaries: int = 0
    run_id: uuid.UUID = field(default_factory=uuid.uuid4)

    def summary(self) -> dict[str, int]:
        return {"learners": self.learners, "team_summaries": self.team_summaries}

    def operation(self, course_id: int, chunk: int) -> uuid.UUID:
        return uuid.uuid5(self.run_id, f"reminder:{course_id}:{chunk}")


def enrollments_remind(*, now: datetime.datetime | None = None, chunk: int = REMINDER_CHUNK) -> ReminderRun:
    """Write an expiry reminder to the outbox for every active enrollment
    whose ``access_until`` falls within its course's ``expiry_reminder_days``
    of ``now`` and has not been reminded of for this ``access_until``
    (leaving out the enrollments a renewing source says renew), and one
    summary per course (per chunk) to each member of the team of a course
    with ``expiry_reminder_team``. Learners without an email address are
    marked reminded and listed to the team. Safe to run twice and on several
    workers at once; must run outside a transaction."""
    now = now or timezone.now()
    run = ReminderRun()
    # The longest window any course asks for bounds the index scan.
    longest = Course.objects.filter(expiry_reminder_days__isnull=False).aggregate(days=Max("expiry_reminder_days"))["days"]
    if longest is None:
        return run
    horizon = now + datetime.timedelta(days=longest)
    renewing = [qs for qs in (source() for source in _renewing_sources) if qs is not None]
    number = 0
    after: tuple[datetime.datetime, int] | None = None
    while True:
        with transaction.atomic():
            claimed, more, after = _claim(now=now, horizon=horizon, limit=chunk, after=after, renewing=renewing)
            if claimed:
                _write(run, claimed, now=now, chunk_number=number)
        number += 1
        if not more:
            break
    if run.learners or run.team_summaries:
        from ..tasks import send_notifications

        enqueue_on_commit(send_notifications)
    return run


# Claims and marks in one statement: only rows whose reminder for this
# access_until is not yet written, and of them only those this statement
# changed (RETURNING) are reminded: a concurrent run skips the locked rows
# and finds the rest already marked.
# The renewing sources' queries go in at {renewing}, each as a NOT EXISTS.
_CLAIM_SQL = """
WITH due AS (
    SELECT e.id FROM enrollments_enrollment e JOIN courses_course c ON c.id = e.course_id
    WHERE e.is_active AND e.access_until IS NOT NULL AND e.access_until > %s AND e.access_until <= %s
      AND c.expiry_reminder_days IS NOT NULL
      AND e.access_until <= %s + make_interval(days => c.expiry_reminder_days)
      AND e.reminded_until IS DISTINCT FROM e.access_until{renewing}
    ORDER BY e.access_until, e.id
    LIMIT %s
    FOR UPDATE OF e SKIP LOCKED
)
UPDATE enrollments_enrollment e SET reminded_until = e.access_until
FROM due WHERE e.id = due.id AND e.reminded_until IS DISTINCT FROM e.access_until
RETURNING e.id, e.user_id, e.course_id, e.access_until
"""

_NOT_RENEWING_SQL = """
      AND NOT EXISTS (SELECT 1 FROM ({query}) AS renewing (user_id, course_id)
                      WHERE renewing.user_id = e.user_id AND renewing.course_id = e.course_id)"""


def _claim(
    *, now: datetime.datetime, horizon: datetime.datetime, limit: int, after: tuple[datetime.datetime, int] | None,
    renewing: list[QuerySet],
) -> tuple[list[Claimed], bool, tuple[datetime.datetime, int] | None]:
    """Claim the next chunk: the rows claimed, whether there may be more, and
    where the next chunk starts reading (SQLite only). ``renewing``: the
    people left out (``renewing_source_register``)."""
    if connection.vendor == "postgresql":
        # The sources' queries compiled into the claim, parameters and all: still one statement a chunk.
        queries = [qs.values_list("user_id", "course_id").query.sql_with_params() for qs in renewing]
        sql = _CLAIM_SQL.format(renewing="".join(_NOT_RENEWING_SQL.format(query=query) for query, _params in queries))
        params = [now, horizon, now, *(p for _query, query_params in queries for p in query_params), limit]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            claimed = sorted(cursor.fetchall(), key=lambda row: (row[3], row[0]))
        # Every row it reads is claimed (the course's window is in the SQL), so a
        # full chunk may have more behind it and a short one has none.
        return claimed, len(claimed) == limit, None
    # SQLite: the write lock first, so the rows read are the rows marked. The
    # course's window is applied here, after the read: a chunk can then hold
    # rows outside their course's window, so the next chunk reads on from the
    # last row read (keyset), not from the first row still unclaimed, or
    # 5,000 rows of a course with a short window would hide every later row
    # of a course with a long one.
    sqlite_write_lock(Enrollment)
    rows_read = Enrollment.objects.filter(
        is_active=True, access_until__gt=now, access_until__lte=horizon, course__expiry_reminder_days__isnull=False,
    ).filter(Q(reminded_until__isnull=True) | ~Q(reminded_until=F("access_until")))
    for qs in renewing:
        rows_read = rows_read.exclude(Exists(qs.filter(user_id=OuterRef("user_id"), course_id=OuterRef("course_id"))))
    if after is not None:
        rows_read = rows_read.filter(Q(access_until__gt=after[0]) | Q(access_until=after[0], id__gt=after[1]))
    candidates = list(
        rows_read.order_by("access_until", "id")
        .values_list("id", "user_id", "course_id", "access_until", "course__expiry_reminder_days")[:limit]
    )
    claimed = [row[:4] for row in candidates if row[3] <= now + datetime.timedelta(days=row[4])]
    Enrollment.objects.filter(pk__in=[row[0] for row in claimed]).update(reminded_until=F("access_until"))
    last = (candidates[-1][3], candidates[-1][0]) if candidates else after
    return claimed, len(candidates) == limit, last


def _write(run: ReminderRun, claimed: list[Claimed], *, now: datetime.datetime, chunk_number: int) -> None:
    from django.contrib.auth import get_user_model

    fields = ("id", "username", "email", "email_key", "first_name", "last_name", *locale_fields())
    users = get_user_model().objects.only(*fields).in_bulk({row[1] for row in claimed})
    courses = Course.objects.in_bulk({row[2] for row in claimed})
    teams: dict[int, list] = defaultdict(list)
    team_courses = [c.pk for c in courses.values() if c.expiry_reminder_team]
    if team_courses:
        roles = CourseRole.objects.filter(course_id__in=team_courses).select_related("user").order_by("course_id", "user__username")
        for role in roles:
            if role.user.email and role.user.is_active:
                teams[role.course_id].append(role.user)
    messages = PeriodMessages()
    rows: list[dict] = []
    per_course: dict[int, list[dict]] = defaultdict(list)
    for _id, user_id, course_id, until in claimed:
        user, course = users[user_id], courses[course_id]
        operation_id = run.operation(course_id, chunk_number)
        # The moment, not the day: each member of the team reads it in their own time zone.
        per_course[course_id].append({"name": user.display_name, "username": user.username, "until": until})
        if user.email:
            rows.append(messages.row(Notification.Kind.EXPIRING, course=course, user=user, until=until, operation_id=operation_id, now=now))
            run.learners += 1
    for course_id, members in teams.items():
        learners = per_course[course_id]
        for member in members:
            rows.append(messages.row(Notification.Kind.EXPIRING_TEAM, course=courses[course_id], user=member, until=now,
                                     operation_id=run.operation(course_id, chunk_number), now=now, learners=learners))
            run.team_summaries += 1
    bulk_insert(Notification, rows, ignore_conflicts=True)
