"""Organisation benchmark, on PostgreSQL.

    DATABASE_URL=postgres://... python -m bench.organisations

1. An enrollment rule over BENCH_ORG_USERS users (100,000) of whom
   BENCH_ORG_MATCH (50,000) match: the service (rule_apply: plan, enroll,
   audit, provenance) against the same rows written by hand-written SQL and by
   a one-user-at-a-time ORM loop (measured on BENCH_ORG_LOOP users, scaled).
2. Importing an xlsx of BENCH_ORG_IMPORT_ROWS rows (50,000; half existing
   people, half new addresses, each with an x in one course column): seconds
   for the check and for the import, and peak Python memory (tracemalloc).

It creates (and drops first) its own database, ``<name>_bench_org``. Figures are
printed, never asserted."""

import io
import os
import time
import tracemalloc
import uuid

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enrollment_site.settings")

from bench.common import Measure, bench_course, fresh_database  # noqa: E402

USERS = int(os.environ.get("BENCH_ORG_USERS", "100000"))
MATCH = int(os.environ.get("BENCH_ORG_MATCH", "50000"))
LOOP = int(os.environ.get("BENCH_ORG_LOOP", "1000"))
IMPORT_ROWS = int(os.environ.get("BENCH_ORG_IMPORT_ROWS", "50000"))


def _setup_database() -> str:
    return fresh_database("bench_org", memory_broker=True)


_course = bench_course


def _make_people(dept):
    from django.contrib.auth import get_user_model

    from organisations.models import Placement

    User = get_user_model()
    for start in range(0, USERS, 10_000):
        users = User.objects.bulk_create([
            User(username=f"orguser{i}", email=f"orguser{i}@example.com", password="!")
            for i in range(start, min(USERS, start + 10_000))
        ])
        Placement.objects.bulk_create([Placement(user=u, department=dept) for i, u in enumerate(users, start=start) if i < MATCH])


def service_run(rule):
    from organisations.services import rule_apply

    with Measure() as m:
        done = rule_apply(rule=rule, actor=None)
    assert done["enrolled"] == MATCH, done
    return m


def sql_run(course, dept, origin):
    """Enrollments, audit entries and provenance rows for the matching users, in three statements."""
    from django.db import connection, transaction

    op = uuid.uuid4()
    with Measure() as m, transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            """
            INSERT INTO enrollments_enrollment (user_id, course_id, is_active, mode, source, created, updated)
            SELECT u.id, %s, true, 'audit', 'rule', now(), now() FROM accounts_user u
            JOIN organisations_placement p ON p.user_id = u.id
            WHERE u.is_active AND p.department_id = %s
              AND NOT EXISTS (SELECT 1 FROM enrollments_enrollment e WHERE e.user_id = u.id AND e.course_id = %s)
            ORDER BY u.id
            ON CONFLICT (user_id, course_id) DO NOTHING
            """,
            [course.pk, dept.pk, course.pk],
        )
        cur.execute(
            """
            INSERT INTO enrollments_enrollmentaudit (created, course_id, user_id, identifier, state_before, state_after, source, reason, operation_id)
            SELECT now(), %s, u.id, u.username, 'none', 'enrolled', 'rule', 'Rule: bench', %s FROM accounts_user u
            JOIN organisations_placement p ON p.user_id = u.id
            WHERE u.is_active AND p.department_id = %s
            """,
            [course.pk, op, dept.pk],
        )
        cur.execute(
            """
            INSERT INTO organisations_enrollmentorigin (user_id, course_id, origin, operation_id, created)
            SELECT u.id, %s, %s, %s, now() FROM accounts_user u
            JOIN organisations_placement p ON p.user_id = u.id WHERE u.is_active AND p.department_id = %s
            ON CONFLICT DO NOTHING
            """,
            [course.pk, origin, op, dept.pk],
        )
    return m


def loop_run(course, dept, origin):
    """One matching user at a time, as a signal handler per user would do it."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from enrollments.models import Enrollment, EnrollmentAudit, State
    from organisations.models import EnrollmentOrigin

    User = get_user_model()
    op = uuid.uuid4()
    with Measure() as m, transaction.atomic():
        for user in User.objects.filter(placement__department=dept, is_active=True).order_by("pk")[:LOOP]:
            enrollment, created = Enrollment.objects.get_or_create(user=user, course=course, defaults={"source": "rule"})
            if created:
                EnrollmentAudit.objects.create(course=course, user=user, identifier=user.username, state_before=State.NONE,
                                               state_after=State.ENROLLED, source="rule", reason="Rule: bench", operation_id=op)
                EnrollmentOrigin.objects.create(user=user, course=course, origin=origin, operation_id=op)
    return m


def bench_rule():
    from django.db import connection

    from organisations.models import EnrollmentRule, OrgUnit, UnitKind
    from organisations.services import rule_save

    dept = OrgUnit.objects.create(kind=UnitKind.DEPARTMENT, name="Bench department")
    started = time.perf_counter()
    _make_people(dept)
    # The statistics autovacuum would gather on a live database: without them
    # PostgreSQL takes the freshly filled placement table for a few dozen rows
    # and plans the rule's NOT IN as a plain subplan (seconds instead of ms).
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE accounts_user, organisations_placement")
    print(f"rule over {USERS:,} users, {MATCH:,} matching (setup {time.perf_counter() - started:.1f} s)")
    svc_course, sql_course, loop_course = _course("RULESVC"), _course("RULESQL"), _course("RULELOOP")
    rule = EnrollmentRule(name="bench", department=dept)
    rule_save(rule=rule, courses=[svc_course], actor=None)
    svc = service_run(rule)
    sql = sql_run(sql_course, dept, "rule:bench-sql")
    loop = loop_run(loop_course, dept, "rule:bench-loop")
    scale = MATCH / LOOP
    loop_scaled = loop.seconds * scale
    print(f"  service (rule_apply)            {svc.seconds:9.3f} s  {svc.queries:>7} queries")
    print(f"  hand-written SQL (same rows)    {sql.seconds:9.3f} s  {sql.queries:>7} queries")
    print(f"  one-user-at-a-time ORM loop     {loop_scaled:9.3f} s  {int(loop.queries * scale):>7} queries"
          f"   (measured on {LOOP:,}: {loop.seconds:.3f} s, scaled x{scale:g})")
    print(f"  service / SQL  = {svc.seconds / sql.seconds:6.2f}x")
    print(f"  loop / service = {loop_scaled / svc.seconds:6.1f}x")
    with Measure() as again:
        from organisations.services import rule_apply

        second = rule_apply(rule=rule, actor=None)
    print(f"  second run (idempotent): {again.seconds:.3f} s, {again.queries} queries, changes {second}")


def bench_import():
    import openpyxl

    from organisations.services import import_check, import_run

    course = _course("IMPORT")
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("Import")
    ws.append(["email", "first name", "last name", "company", "department", "team", "function", "language", course.key])
    for i in range(IMPORT_ROWS):
        # half the rows are people who exist (from the rule benchmark), half new addresses
        email = f"orguser{MATCH + i}@example.com" if i % 2 == 0 and MATCH + i < USERS else f"importnew{i}@example.org"
        ws.append([email, "", "", "", "", "", "", "", "x"])
    out = io.BytesIO()
    wb.save(out)
    data = out.getvalue()
    print(f"\nimport of a {IMPORT_ROWS:,}-row xlsx ({len(data) / 1e6:.1f} MB)")
    import resource

    # Times are taken without tracemalloc (it slows Python down several times);
    # peak memory comes from a second check under tracemalloc and the process's max RSS.
    started = time.perf_counter()
    checked = import_check(name="bench.xlsx", data=data, actor=None)
    check_seconds = time.perf_counter() - started
    started = time.perf_counter()
    summary = import_run(org_import=checked, actor=None)
    run_seconds = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tracemalloc.start()
    import_check(name="bench.xlsx", data=data, actor=None)
    _, check_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"  check (read, validate, preview): {check_seconds:7.2f} s; preview {checked.preview}")
    print(f"  import (background job body):    {run_seconds:7.2f} s; outcome {summary}")
    print(f"  peak Python allocations during a check {check_peak / 1e6:.1f} MB (tracemalloc); process max RSS {rss:.0f} MB")


def main():
    name = _setup_database()
    print(f"Organisation benchmark on PostgreSQL (database {name})\n")
    bench_rule()
    bench_import()


if __name__ == "__main__":
    main()
