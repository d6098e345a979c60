"""Undo benchmark, on PostgreSQL: undo of a BENCH_UNDO_ROWS-person (10,000)
Membership batch (an unenroll of everyone) with ``operation_undo``, against
hand-written SQL doing the same writes in one transaction: the enrollments
reactivated and one audit row each (source undo, states, mode and cohort
before and after, the operation undone).

    DATABASE_URL=postgres://... python -m bench.undo

It creates (and drops first) its own database, ``<name>_bench_undo``.
Figures are printed, never asserted (tests pin the queries)."""

import os
import time
import uuid

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enrollment_site.settings")

from bench.common import Measure, bench_course, fresh_database  # noqa: E402

ROWS = int(os.environ.get("BENCH_UNDO_ROWS", "10000"))


def _seed(courses) -> None:
    """ROWS users, each enrolled in every one of ``courses``. Set-based."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            """
            INSERT INTO accounts_user (password, is_superuser, username, first_name, last_name, email, email_key, email_key_clash,
                                       username_skeleton, is_staff, is_active, date_joined, language, date_added)
            SELECT '!', false, 'undouser' || i, 'Learner', 'Number ' || i, 'undouser' || i || '@example.com', 'undouser' || i || '@example.com',
                   false, 'undouser' || i, false, true, now(), '', current_date
            FROM generate_series(1, %s) AS i
            """,
            [ROWS],
        )
        for course in courses:
            cur.execute(
                """
                INSERT INTO enrollments_enrollment (user_id, course_id, is_active, mode, source, created, updated)
                SELECT id, %s, true, CASE WHEN id %% 3 = 0 THEN 'verified' ELSE 'audit' END, 'batch', now(), now()
                FROM accounts_user WHERE username LIKE 'undouser%%'
                """,
                [course.pk],
            )
        cur.execute("ANALYZE")


def _mistake(course, actor) -> uuid.UUID:
    """The batch to undo: everyone unenrolled from the Membership page."""
    from django.contrib.auth import get_user_model

    from enrollments.services import enrollment_batch_update

    names = list(get_user_model().objects.filter(username__startswith="undouser").values_list("username", flat=True))
    return enrollment_batch_update(course=course, identifiers=names, action="unenroll", auto_enroll=False, email_students=False, actor=actor).operation_id


def sql_run(course, actor, operation_id):
    """The same writes by hand: one audit row per person of the operation,
    then the enrollments reactivated; one statement each."""
    from django.db import connection, transaction

    undo = uuid.uuid4()
    with Measure() as m, transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            """
            INSERT INTO enrollments_enrollmentaudit (created, actor_id, course_id, user_id, identifier, state_before, state_after, source,
                                                     reason, operation_id, undoes, mode_before, mode_after, cohort_before, cohort_after)
            SELECT now(), %s, a.course_id, a.user_id, a.identifier, a.state_after, a.state_before, 'undo', %s, %s, a.operation_id,
                   e.mode, e.mode, '', ''
            FROM enrollments_enrollmentaudit a JOIN enrollments_enrollment e ON e.user_id = a.user_id AND e.course_id = a.course_id
            WHERE a.course_id = %s AND a.operation_id = %s
            """,
            [actor.pk, f"Undo of operation {operation_id}", undo, course.pk, operation_id],
        )
        cur.execute(
            """
            UPDATE enrollments_enrollment e SET is_active = true, updated = now() FROM enrollments_enrollmentaudit a
            WHERE a.course_id = %s AND a.operation_id = %s AND e.course_id = a.course_id AND e.user_id = a.user_id
            """,
            [course.pk, operation_id],
        )
        assert cur.rowcount == ROWS, cur.rowcount
    return m


def main():
    name = fresh_database("bench_undo", memory_broker=True)
    from django.contrib.auth import get_user_model

    from enrollments.models import Enrollment
    from enrollments.services.undo import operation_undo

    print(f"Undo benchmark on PostgreSQL (database {name}); undo of a {ROWS:,}-person unenroll batch")
    started = time.perf_counter()
    warm, svc_course, sql_course = bench_course("UWARM"), bench_course("USVC"), bench_course("USQL")
    _seed([warm, svc_course, sql_course])
    actor = get_user_model().objects.create(username="benchadmin", email="benchadmin@example.com", is_staff=True, is_superuser=True)
    svc_op, sql_op, warm_op = _mistake(svc_course, actor), _mistake(sql_course, actor), _mistake(warm, actor)
    print(f"  (seeded {ROWS:,} users, three courses of {ROWS:,} enrollments, each unenrolled by a batch, in {time.perf_counter() - started:.1f} s)")

    operation_undo(course=warm, operation_id=warm_op, actor=actor)  # warm up (query compilation, caches)
    with Measure() as svc:
        done = operation_undo(course=svc_course, operation_id=svc_op, actor=actor)
    assert done is not None and len(done.plan.restores) == ROWS and not done.plan.left_alone
    sql = sql_run(sql_course, actor, sql_op)
    assert Enrollment.objects.filter(course__in=[svc_course, sql_course], is_active=True).count() == 2 * ROWS
    print(f"  operation_undo                                    {svc.seconds:9.3f} s  {svc.queries:>7} queries")
    print(f"  hand-written SQL (same writes, one transaction)   {sql.seconds:9.3f} s  {sql.queries:>7} queries")
    print(f"  service / SQL = {svc.seconds / sql.seconds:6.2f}x   (goal: within 3x)")


if __name__ == "__main__":
    main()
