"""Expiry benchmark, on PostgreSQL: one run of ``enrollments_expire`` ending
BENCH_EXPIRY_ROWS (100,000) enrollments whose period has ended, against
hand-written SQL doing the same writes in one transaction (the UPDATE, one
audit row and one outbox row each); and the reminder scan's query count at
several sizes.

    DATABASE_URL=postgres://... python -m bench.expiry

It creates (and drops first) its own database, ``<name>_bench_expiry``.
Figures are printed, never asserted (tests pin the queries)."""

import os
import statistics
import uuid

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enrollment_site.settings")

from bench.common import Measure, bench_course, fresh_database  # noqa: E402

ROWS = int(os.environ.get("BENCH_EXPIRY_ROWS", "100000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
COURSES = 4


def _seed(courses, rows: int, *, prefix: str, until_sql: str) -> None:
    """``rows`` users spread over ``courses``, each with one active
    enrollment ending at ``until_sql``. Set-based."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            f"""
            INSERT INTO accounts_user (password, is_superuser, username, first_name, last_name, email, email_key, email_key_clash,
                                       username_skeleton, is_staff, is_active, date_joined, language, date_added)
            SELECT '!', false, '{prefix}' || i, 'Learner', 'Number ' || i, '{prefix}' || i || '@example.com', '{prefix}' || i || '@example.com',
                   false, '{prefix}' || i, false, true, now(), '', current_date
            FROM generate_series(1, %s) AS i
            """,  # noqa: S608 (a constant prefix)
            [rows],
        )
        ids = [c.pk for c in courses]
        cur.execute(
            f"""
            INSERT INTO enrollments_enrollment (user_id, course_id, is_active, mode, source, created, updated, access_until)
            SELECT u.id, (%s::bigint[])[1 + u.id %% %s], true, 'audit', 'batch', now() - interval '1 year', now(), {until_sql}
            FROM accounts_user u WHERE u.username LIKE '{prefix}%%'
            """,  # noqa: S608 (constants)
            [ids, len(ids)],
        )
        cur.execute("ANALYZE")


def _reset(now) -> None:
    """Every seeded enrollment active again, their audit and outbox rows gone."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("UPDATE enrollments_enrollment SET is_active = true WHERE access_until <= %s", [now])
        cur.execute("DELETE FROM enrollments_enrollmentaudit")
        cur.execute("DELETE FROM enrollments_notification")
        cur.execute("VACUUM ANALYZE enrollments_enrollment")


_SQL = """
WITH ended AS (
    UPDATE enrollments_enrollment e SET is_active = false, updated = %(now)s
    WHERE e.is_active AND e.access_until <= %(now)s
    RETURNING e.id, e.user_id, e.course_id, e.access_from, e.access_until
),
audit AS (
    INSERT INTO enrollments_enrollmentaudit (created, actor_id, course_id, user_id, identifier, state_before, state_after, source, reason,
        operation_id, mode_before, mode_after, cohort_before, cohort_after, undoes,
        access_from_before, access_from_after, access_until_before, access_until_after)
    SELECT %(now)s, NULL, ended.course_id, ended.user_id, u.username, 'enrolled', 'unenrolled', 'expiry', '',
        md5(%(run)s || ended.course_id)::uuid, '', '', '', '', NULL, ended.access_from, ended.access_from, ended.access_until, ended.access_until
    FROM ended JOIN accounts_user u ON u.id = ended.user_id
)
INSERT INTO enrollments_notification (operation_id, kind, recipient, recipient_key, subject, body, name, auto_enroll, reason,
    course_id, status, attempts, created, message_id, error)
SELECT md5(%(run)s || ended.course_id)::uuid, 'expired', u.email, u.email_key, 'Your access to ' || c.display_name || ' has ended', '',
    left(u.first_name || ' ' || u.last_name, 150), false, '', ended.course_id, 'pending', 0, %(now)s, '', ''
FROM ended JOIN accounts_user u ON u.id = ended.user_id JOIN courses_course c ON c.id = ended.course_id
"""


def sql_run(now):
    """The same writes by hand, in one statement and one transaction."""
    from django.db import connection, transaction

    with Measure() as m, transaction.atomic(), connection.cursor() as cur:
        cur.execute(_SQL, {"now": now, "run": str(uuid.uuid4())})
    return m


def service_run(now):
    from enrollments.services import enrollments_expire

    with Measure() as m:
        run = enrollments_expire(now=now)
    assert run.ended == ROWS, run.ended
    return m


def _check(now) -> None:
    from enrollments.models import Enrollment, EnrollmentAudit, Notification

    assert not Enrollment.objects.filter(is_active=True, access_until__lte=now).exists()
    assert EnrollmentAudit.objects.count() == ROWS and Notification.objects.count() == ROWS


def reminder_queries(sizes: list[int]) -> list[tuple[int, int, float]]:
    """(size, queries, seconds) of one reminder scan over ``size`` enrollments
    due a reminder, in a course that also sends its team the summary."""
    from django.db import connection

    from courses.models import CourseRole
    from enrollments.services import enrollments_remind
    from enrollments.services.reminders import REMINDER_CHUNK

    figures = []
    for size in sizes:
        course = bench_course(f"REMIND{size}")
        course.expiry_reminder_days, course.expiry_reminder_team = 7, True
        course.save()
        _seed([course], size, prefix=f"remind{size}_", until_sql="now() + interval '2 days'")
        admin_id = connection.cursor().execute("SELECT id FROM accounts_user WHERE username = %s", [f"remind{size}_1"]).fetchone()[0]
        CourseRole.objects.create(course=course, user_id=admin_id, role="admin")
        with Measure() as m:
            run = enrollments_remind()
        assert run.learners == size, run.learners
        figures.append((size, m.queries, m.seconds))
        # Done with: out of the next size's way (reminded already, so it would not count anyway).
        connection.cursor().execute("UPDATE courses_course SET expiry_reminder_days = NULL WHERE id = %s", [course.pk])
    print(f"  (the scan claims {REMINDER_CHUNK:,} rows a chunk: a fixed number of queries per chunk)")
    return figures


def main():
    name = fresh_database("bench_expiry", memory_broker=True)
    import django.utils.timezone as tz

    print(f"Expiry benchmark on {name}: {ROWS:,} enrollments over {COURSES} courses ended in one run, best of {ROUNDS}")
    courses = [bench_course(f"EXPIRY{i}") for i in range(COURSES)]
    _seed(courses, ROWS, prefix="expiry", until_sql="now() - interval '1 hour'")
    now = tz.now()
    services, sqls, queries = [], [], 0
    for _ in range(ROUNDS):
        _reset(now)
        m = service_run(now)
        _check(now)
        services.append(m.seconds)
        queries = m.queries
        _reset(now)
        sqls.append(sql_run(now).seconds)
        _check(now)
    best_service, best_sql = min(services), min(sqls)
    print(f"  enrollments_expire: {best_service:.2f} s best (median {statistics.median(services):.2f} s), {queries} queries")
    print(f"  hand-written SQL:   {best_sql:.2f} s best (median {statistics.median(sqls):.2f} s), 1 statement")
    print(f"  ratio service / SQL: {best_service / best_sql:.2f}x (target: within 3x)")
    print("Reminder scan: queries at several sizes")
    for size, count, seconds in reminder_queries([1000, 4000, 20000]):
        print(f"  {size:>7,} enrollments due a reminder: {count} queries, {seconds:.2f} s")


if __name__ == "__main__":
    main()
