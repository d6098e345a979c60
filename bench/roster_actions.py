"""Learners-table actions benchmark, on PostgreSQL: "unenroll every learner
matching the filter" over BENCH_ROSTER_ROWS enrollments (200,000) as the job
it becomes (``roster_apply`` then ``roster_job_run``), against hand-written
SQL doing the same writes in one transaction: the enrollments deactivated,
the learners' allowances removed, one audit row each (state, mode and cohort
before and after) and one outbox email each.

    DATABASE_URL=postgres://... python -m bench.roster_actions

It creates (and drops first) its own database, ``<name>_bench_roster_actions``.
Figures are printed, never asserted (tests pin the queries per chunk)."""

import os
import time
import uuid

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enrollment_site.settings")

from bench.common import Measure, bench_course, fresh_database  # noqa: E402

ROWS = int(os.environ.get("BENCH_ROSTER_ROWS", "200000"))
COHORT_SHARE = 10  # one learner in this many is in a cohort


def _seed(courses) -> None:
    """ROWS users, each enrolled in every one of ``courses``; one in COHORT_SHARE
    in a cohort there, and a few allowances for their addresses. Set-based."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            """
            INSERT INTO accounts_user (password, is_superuser, username, first_name, last_name, email, email_key, email_key_clash,
                                       username_skeleton, is_staff, is_active, date_joined, language, date_added)
            SELECT '!', false, 'rosteruser' || i, 'Learner', 'Number ' || i, 'rosteruser' || i || '@example.com',
                   'rosteruser' || i || '@example.com', false,
                   -- the keys User.save() derives, for these lower-case ASCII names (1 and 0 look like l and o)
                   translate('rosteruser' || i, '10', 'lo'), false, true, now(), '', current_date
            FROM generate_series(1, %s) AS i
            """,
            [ROWS],
        )
        for course in courses:
            cur.execute(
                """
                INSERT INTO enrollments_enrollment (user_id, course_id, is_active, mode, source, created, updated)
                SELECT id, %s, true, CASE WHEN id %% 3 = 0 THEN 'verified' ELSE 'audit' END, 'batch', now() - (id || ' seconds')::interval, now()
                FROM accounts_user WHERE username LIKE 'rosteruser%%'
                """,
                [course.pk],
            )
            cur.execute("INSERT INTO courses_cohort (course_id, name, created) VALUES (%s, 'Bench cohort', now()) RETURNING id", [course.pk])
            cohort_id = cur.fetchone()[0]
            cur.execute(
                """
                INSERT INTO courses_cohortmembership (cohort_id, course_id, user_id, created)
                SELECT %s, %s, id, now() FROM accounts_user WHERE username LIKE 'rosteruser%%' AND id %% %s = 0
                """,
                [cohort_id, course.pk, COHORT_SHARE],
            )
            cur.execute(
                """
                INSERT INTO enrollments_allowance (course_id, email, email_key, auto_enroll, created, used_at)
                SELECT %s, email, lower(email), true, now(), now() FROM accounts_user WHERE username LIKE 'rosteruser%%' AND id %% 100 = 0
                """,
                [course.pk],
            )
        cur.execute("ANALYZE")


def service_run(course, actor):
    """The learners table's bulk unenroll over every active row, as the page asks
    for it (the ids of the rows matching the filter) and the worker runs it."""
    from enrollments.models import Enrollment, RosterJob
    from enrollments.services import roster_apply, roster_job_run

    with Measure() as m:
        ids = list(Enrollment.objects.filter(course=course, is_active=True).values_list("pk", flat=True))
        with Measure() as asked:
            result = roster_apply(actor=actor, course=course, action="unenroll", enrollment_ids=ids, reason="Bench", email_students=True)
        assert result.job is not None, "expected a job above ENROLLMENT_SYNC_LIMIT"
        with Measure() as ran:
            job = roster_job_run(job_id=result.job.pk)
    assert job is not None and job.status == RosterJob.Status.SUCCEEDED, job and job.error
    assert job.summary["changed"] == ROWS, job.summary
    return m, asked, ran, job


def sql_run(course, actor):
    """The same writes by hand: audit rows (with mode and cohort), allowances
    removed, outbox rows, enrollments deactivated; one statement each."""
    from django.db import connection, transaction

    from enrollments.notifications import MessageBuilder

    op = uuid.uuid4()
    with Measure() as m, transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            """
            INSERT INTO enrollments_enrollmentaudit (created, actor_id, course_id, user_id, identifier, state_before, state_after, source,
                                                     reason, operation_id, mode_before, mode_after, cohort_before, cohort_after)
            SELECT now(), %s, e.course_id, e.user_id, u.username, 'enrolled', 'unenrolled', 'roster', 'Bench', %s, e.mode, e.mode,
                   coalesce(c.name, ''), coalesce(c.name, '')
            FROM enrollments_enrollment e JOIN accounts_user u ON u.id = e.user_id
            LEFT JOIN courses_cohortmembership cm ON cm.user_id = e.user_id AND cm.course_id = e.course_id
            LEFT JOIN courses_cohort c ON c.id = cm.cohort_id
            WHERE e.course_id = %s AND e.is_active
            """,
            [actor.pk, op, course.pk],
        )
        cur.execute(
            """
            DELETE FROM enrollments_allowance a USING enrollments_enrollment e JOIN accounts_user u ON u.id = e.user_id
            WHERE a.course_id = %s AND e.course_id = %s AND e.is_active AND a.email_key = lower(u.email)
            """,
            [course.pk, course.pk],
        )
        # The subject is rendered as the service renders it (part of the same work).
        subject = MessageBuilder(course).unenrolled(email="x@example.com", operation_id=op)["subject"]
        cur.execute(
            """
            INSERT INTO enrollments_notification (operation_id, kind, recipient, recipient_key, subject, body, name, auto_enroll,
                                                  reason, course_id, status, attempts, created, message_id, error)
            SELECT %s, 'unenrolled', u.email, lower(u.email), %s, '', trim(u.first_name || ' ' || u.last_name), false, 'Bench', %s,
                   'pending', 0, now(), '', ''
            FROM enrollments_enrollment e JOIN accounts_user u ON u.id = e.user_id
            WHERE e.course_id = %s AND e.is_active
            """,
            [op, subject, course.pk, course.pk],
        )
        cur.execute("UPDATE enrollments_enrollment SET is_active = false, updated = now() WHERE course_id = %s AND is_active", [course.pk])
        assert cur.rowcount == ROWS, cur.rowcount
    return m


def main():
    name = fresh_database("bench_roster_actions", memory_broker=True)
    from django.contrib.auth import get_user_model

    from enrollments.services.roster import ROSTER_CHUNK

    print(f"Learners-table actions benchmark on PostgreSQL (database {name}); unenroll all {ROWS:,} enrollments matching the filter")
    started = time.perf_counter()
    warm, svc_course, sql_course = bench_course("RAWARM"), bench_course("RASVC"), bench_course("RASQL")
    _seed([svc_course, sql_course])
    actor = get_user_model().objects.create(username="benchadmin", email="benchadmin@example.com", is_staff=True, is_superuser=True)
    print(f"  (seeded {ROWS:,} users, two courses of {ROWS:,} enrollments, {100 // COHORT_SHARE}% in a cohort, in {time.perf_counter() - started:.1f} s)")

    # Warm up (query compilation, templates) on a small course first.
    from enrollments.models import Enrollment
    from enrollments.services import roster_apply

    users = get_user_model().objects.filter(username__startswith="rosteruser").order_by("pk")[:3]
    Enrollment.objects.bulk_create([Enrollment(course=warm, user=u) for u in users])
    roster_apply(actor=actor, course=warm, action="unenroll", enrollment_ids=Enrollment.objects.filter(course=warm).values_list("pk", flat=True))

    svc, asked, ran, job = service_run(svc_course, actor)
    sql = sql_run(sql_course, actor)
    chunks = -(-ROWS // ROSTER_CHUNK)
    print(f"  service (ids read + roster_apply + roster_job_run) {svc.seconds:9.3f} s  {svc.queries:>7} queries")
    print(f"    of which: roster_apply (check the selection, queue)  {asked.seconds:7.3f} s  {asked.queries:>5} queries")
    print(f"              roster_job_run ({chunks} chunks of {ROSTER_CHUNK:,})         {ran.seconds:7.3f} s  {ran.queries:>5} queries"
          f"  ({ran.queries / chunks:.1f} a chunk, claim and finish included)")
    print(f"  hand-written SQL (same writes, one transaction)   {sql.seconds:9.3f} s  {sql.queries:>7} queries")
    print(f"  service / SQL = {svc.seconds / sql.seconds:6.2f}x   (goal: within 3x)")
    print(f"  job summary {job.summary}")


if __name__ == "__main__":
    main()
