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
import statistics
import time
import tracemalloc
import uuid

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enrollment_site.settings")

from bench.common import Measure, bench_course, fresh_database, settle  # noqa: E402

USERS = int(os.environ.get("BENCH_ORG_USERS", "100000"))
MATCH = int(os.environ.get("BENCH_ORG_MATCH", "50000"))
LOOP = int(os.environ.get("BENCH_ORG_LOOP", "1000"))
IMPORT_ROWS = int(os.environ.get("BENCH_ORG_IMPORT_ROWS", "50000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))


def _setup_database() -> str:
    return fresh_database("bench_org", memory_broker=True)


_course = bench_course


def _settled(run):
    """``run`` once autovacuum has nothing left to do (``settle``)."""
    def settled(*args):
        settle()
        return run(*args)
    return settled


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
        done = rule_apply(rule=rule, actor=None, email_students=True)
    assert done["enrolled"] == MATCH, done
    return m


# The matching people as the rule's plan reads them, with what the writes need.
_MATCHING = """
    SELECT u.id, u.username, u.email, u.email_key,
           coalesce(nullif(btrim(u.first_name || ' ' || u.last_name), ''), u.username) AS name,
           CASE WHEN strpos(u.username, '@') > 0 THEN u.email ELSE u.username END AS identifier
    FROM accounts_user u JOIN organisations_placement p ON p.user_id = u.id
    WHERE u.is_active AND p.department_id = %(dept)s
"""
_AUDIT_COLUMNS = ("enrollments_enrollmentaudit (created, course_id, user_id, identifier, state_before, state_after, source, reason, "
                  "operation_id, mode_before, mode_after, cohort_before, cohort_after)")
_OUTBOX_COLUMNS = ("enrollments_notification (operation_id, kind, recipient, recipient_key, subject, body, name, auto_enroll, reason, "
                   "course_id, status, attempts, created, message_id, error)")
_ORIGIN_CHANGE_COLUMNS = "organisations_enrollmentoriginchange (operation_id, origin, course_id, user_id, before_operation_id, before_created)"


def _rule_params(course, dept, origin):
    from enrollments.notifications import MessageBuilder

    op = uuid.uuid4()
    return {"course": course.pk, "dept": dept.pk, "origin": origin, "op": op, "mode": course.default_mode,
            "subject": MessageBuilder(course).enrolled(email="", operation_id=op)["subject"]}


def sql_run(course, dept, origin):
    """The same rows written by hand-written SQL without the service's reads:
    enrollments, audit entries, outbox rows, origin changes and origins, one
    INSERT … SELECT each from the matching people."""
    from django.db import connection, transaction

    params = _rule_params(course, dept, origin)
    with Measure() as m, transaction.atomic(), connection.cursor() as cur:
        cur.execute(f"""
            INSERT INTO enrollments_enrollment (user_id, course_id, is_active, mode, source, created, updated)
            SELECT m.id, %(course)s, true, %(mode)s, 'rule', now(), now() FROM ({_MATCHING}) m ORDER BY m.id
            ON CONFLICT (user_id, course_id) DO NOTHING
        """, params)  # noqa: S608 (constants)
        cur.execute(f"""
            INSERT INTO {_AUDIT_COLUMNS}
            SELECT now(), %(course)s, m.id, m.identifier, 'none', 'enrolled', 'rule', 'Rule: bench', %(op)s, '', '', '', ''
            FROM ({_MATCHING}) m ORDER BY m.id
        """, params)  # noqa: S608 (constants)
        cur.execute(f"""
            INSERT INTO {_OUTBOX_COLUMNS}
            SELECT %(op)s, 'enrolled', m.email, m.email_key, %(subject)s, '', left(m.name, 150), false, 'Rule: bench', %(course)s,
                   'pending', 0, now(), '', ''
            FROM ({_MATCHING}) m ORDER BY m.id ON CONFLICT DO NOTHING
        """, params)  # noqa: S608 (constants)
        cur.execute(f"""
            INSERT INTO {_ORIGIN_CHANGE_COLUMNS}
            SELECT %(op)s, %(origin)s, %(course)s, m.id, NULL, NULL FROM ({_MATCHING}) m ORDER BY m.id ON CONFLICT DO NOTHING
        """, params)  # noqa: S608 (constants)
        cur.execute(f"""
            INSERT INTO organisations_enrollmentorigin (user_id, course_id, origin, operation_id, created)
            SELECT m.id, %(course)s, %(origin)s, %(op)s, now() FROM ({_MATCHING}) m ORDER BY m.id ON CONFLICT DO NOTHING
        """, params)  # noqa: S608 (constants)
    return m


def floor_run(course, dept, origin):
    """The floor: the rule's reads and writes in SQL alone, one statement. It
    reads the matching people, locks their existing enrollments in the course
    in user-id order, writes the enrollments only where they change, and from
    what the write RETURNED the audit entries (with each state before), the
    outbox rows, the origins' former values and the origins. No counts or
    results come back: no program doing this work can go faster."""
    from django.db import connection, transaction

    params = _rule_params(course, dept, origin)
    with Measure() as m, transaction.atomic(), connection.cursor() as cur:
        cur.execute(f"""
            WITH u AS ({_MATCHING}),
            before AS (
                SELECT e.user_id, e.is_active FROM enrollments_enrollment e
                WHERE e.course_id = %(course)s AND e.user_id IN (SELECT id FROM u) ORDER BY e.user_id FOR UPDATE
            ),
            written AS (
                INSERT INTO enrollments_enrollment (user_id, course_id, is_active, mode, source, created, updated)
                SELECT u.id, %(course)s, true, %(mode)s, 'rule', now(), now()
                FROM u LEFT JOIN before b ON b.user_id = u.id WHERE b.is_active IS NOT TRUE ORDER BY u.id
                ON CONFLICT (user_id, course_id) DO UPDATE SET is_active = true, updated = now()
                WHERE NOT enrollments_enrollment.is_active
                RETURNING user_id, xmax = 0 AS inserted
            ),
            audited AS (
                INSERT INTO {_AUDIT_COLUMNS}
                SELECT now(), %(course)s, u.id, u.identifier, CASE WHEN w.inserted THEN 'none' ELSE 'unenrolled' END,
                       'enrolled', 'rule', 'Rule: bench', %(op)s, '', '', '', ''
                FROM written w JOIN u ON u.id = w.user_id ORDER BY u.id
            ),
            mailed AS (
                INSERT INTO {_OUTBOX_COLUMNS}
                SELECT %(op)s, 'enrolled', u.email, u.email_key, %(subject)s, '', left(u.name, 150), false, 'Rule: bench', %(course)s,
                       'pending', 0, now(), '', ''
                FROM written w JOIN u ON u.id = w.user_id ORDER BY u.id ON CONFLICT DO NOTHING
            ),
            was AS (
                SELECT o.user_id, o.operation_id, o.created FROM organisations_enrollmentorigin o
                WHERE o.origin = %(origin)s AND o.course_id = %(course)s AND o.user_id IN (SELECT user_id FROM written)
            ),
            kept AS (
                INSERT INTO {_ORIGIN_CHANGE_COLUMNS}
                SELECT %(op)s, %(origin)s, %(course)s, w.user_id, was.operation_id, was.created
                FROM written w LEFT JOIN was USING (user_id) ORDER BY w.user_id ON CONFLICT DO NOTHING
            )
            INSERT INTO organisations_enrollmentorigin (user_id, course_id, origin, operation_id, created)
            SELECT w.user_id, %(course)s, %(origin)s, %(op)s, now() FROM written w ORDER BY w.user_id
            ON CONFLICT (origin, course_id, user_id) DO UPDATE SET operation_id = excluded.operation_id, created = excluded.created
        """, params)  # noqa: S608 (constants)
    return m


def loop_run(course, dept, origin):
    """One matching user at a time, as a signal handler per user would do it."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from enrollments.models import Enrollment, EnrollmentAudit, Notification, State
    from enrollments.notifications import MessageBuilder
    from organisations.models import EnrollmentOrigin, EnrollmentOriginChange

    User = get_user_model()
    op = uuid.uuid4()
    builder = MessageBuilder(course)
    with Measure() as m, transaction.atomic():
        for user in User.objects.filter(placement__department=dept, is_active=True).order_by("pk")[:LOOP]:
            enrollment, created = Enrollment.objects.get_or_create(user=user, course=course, defaults={"source": "rule"})
            if created:
                EnrollmentAudit.objects.create(course=course, user=user, identifier=user.username, state_before=State.NONE,
                                               state_after=State.ENROLLED, source="rule", reason="Rule: bench", operation_id=op)
                Notification.objects.create(**builder.enrolled(email=user.email, operation_id=op, name=user.display_name))
                EnrollmentOriginChange.objects.create(operation_id=op, origin=origin, course=course, user=user)
                EnrollmentOrigin.objects.create(user=user, course=course, origin=origin, operation_id=op)
    return m


def _written(course) -> tuple[int, ...]:
    """Rows written for ``course``: enrollments, audit entries, outbox rows, origin changes and origins."""
    from enrollments.models import Enrollment, EnrollmentAudit, Notification
    from organisations.models import EnrollmentOrigin, EnrollmentOriginChange

    return tuple(model.objects.filter(course=course).count()
                 for model in (Enrollment, EnrollmentAudit, Notification, EnrollmentOriginChange, EnrollmentOrigin))


def bench_rule():
    from django.db import connection

    from organisations.models import EnrollmentRule, OrgUnit, UnitKind
    from organisations.services import rule_apply, rule_save

    dept = OrgUnit.objects.create(kind=UnitKind.DEPARTMENT, name="Bench department")
    started = time.perf_counter()
    _make_people(dept)
    # The statistics autovacuum would gather on a live database: without them
    # PostgreSQL takes the freshly filled placement table for a few dozen rows
    # and plans the rule's NOT IN as a plain subplan (seconds instead of ms).
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE accounts_user, organisations_placement")
    print(f"rule over {USERS:,} users, {MATCH:,} matching, notifications on (setup {time.perf_counter() - started:.1f} s); "
          f"medians of {ROUNDS} rounds, every method in each round")
    rounds = []
    for n in range(ROUNDS):
        svc_course, sql_course, floor_course = _course(f"RULESVC{n}"), _course(f"RULESQL{n}"), _course(f"RULEFLOOR{n}")
        rule = EnrollmentRule(name=f"bench {n}", department=dept)
        rule_save(rule=rule, courses=[svc_course], actor=None)
        # Methods take turns, so that a load that comes and goes falls on each of them alike.
        order = [("service", service_run, (rule,)), ("sql", sql_run, (sql_course, dept, f"rule:bench-sql{n}")),
                 ("floor", floor_run, (floor_course, dept, f"rule:bench-floor{n}"))]
        measured = {name: _settled(run)(*args) for name, run, args in order[n % 3:] + order[:n % 3]}
        written = {name: _written(c) for name, c in (("service", svc_course), ("sql", sql_course), ("floor", floor_course))}
        assert len(set(written.values())) == 1, written
        rounds.append(measured)
        print(f"  round {n + 1}: " + ", ".join(f"{k} {v.seconds:.3f} s" for k, v in measured.items()))
    med = {k: statistics.median(r[k].seconds for r in rounds) for k in rounds[0]}
    queries = {k: rounds[-1][k].queries for k in rounds[0]}
    loop = loop_run(_course("RULELOOP"), dept, "rule:bench-loop")
    scale = MATCH / LOOP
    loop_scaled = loop.seconds * scale
    print(f"  service (rule_apply)            {med['service']:9.3f} s  {queries['service']:>7} queries")
    print(f"  hand-written SQL (same rows)    {med['sql']:9.3f} s  {queries['sql']:>7} queries")
    print(f"  floor (same reads and writes)   {med['floor']:9.3f} s  {queries['floor']:>7} queries")
    print(f"  one-user-at-a-time ORM loop     {loop_scaled:9.3f} s  {int(loop.queries * scale):>7} queries"
          f"   (measured on {LOOP:,}: {loop.seconds:.3f} s, scaled x{scale:g})")
    print(f"  rule / floor   = {med['service'] / med['floor']:6.2f}x   (goal: within 1.5x)")
    print(f"  rule / SQL     = {med['service'] / med['sql']:6.2f}x")
    print(f"  loop / service = {loop_scaled / med['service']:6.1f}x")
    with Measure() as again:
        second = rule_apply(rule=rule, actor=None)
    print(f"  second run (idempotent): {again.seconds:.3f} s, {again.queries} queries, changes {second}")


def import_floor_run(course, rows):
    """The import's floor: its reads and writes for one course in SQL alone,
    one statement. It matches the rows' email keys to active accounts (the
    oldest of a shared key), locks their enrollments and the course's
    invitations for the other addresses in key order, writes enrollments and
    invitations only where they change and, from what those writes RETURNED,
    their audit entries with each state before."""
    from django.db import connection, transaction

    params = {"course": course.pk, "mode": course.default_mode, "op": uuid.uuid4(), "reason": "Import bench.xlsx",
              "emails": [r["email"] for r in rows], "keys": [r["email_key"] for r in rows]}
    with Measure() as m, transaction.atomic(), connection.cursor() as cur:
        cur.execute(f"""
            WITH r AS (SELECT DISTINCT ON (k) e, k FROM unnest(%(emails)s::text[], %(keys)s::text[]) AS t(e, k) ORDER BY k),
            acc AS (
                SELECT DISTINCT ON (a.email_key) a.email_key, a.id FROM accounts_user a
                WHERE a.email_key = ANY(%(keys)s) AND a.is_active ORDER BY a.email_key, a.id
            ),
            before AS (
                SELECT e.user_id, e.is_active FROM enrollments_enrollment e
                WHERE e.course_id = %(course)s AND e.user_id IN (SELECT id FROM acc) ORDER BY e.user_id FOR UPDATE
            ),
            written AS (
                INSERT INTO enrollments_enrollment (user_id, course_id, is_active, mode, source, created, updated)
                SELECT acc.id, %(course)s, true, %(mode)s, 'import', now(), now()
                FROM acc LEFT JOIN before b ON b.user_id = acc.id WHERE b.is_active IS NOT TRUE ORDER BY acc.id
                ON CONFLICT (user_id, course_id) DO UPDATE SET is_active = true, updated = now()
                WHERE NOT enrollments_enrollment.is_active
                RETURNING user_id, xmax = 0 AS inserted
            ),
            audited AS (
                INSERT INTO {_AUDIT_COLUMNS}
                SELECT now(), %(course)s, w.user_id, r.e, CASE WHEN w.inserted THEN 'none' ELSE 'unenrolled' END,
                       'enrolled', 'import', %(reason)s, %(op)s, '', '', '', ''
                FROM written w JOIN acc ON acc.id = w.user_id JOIN r ON r.k = acc.email_key
            ),
            invited_before AS (
                SELECT a.email_key, a.auto_enroll FROM enrollments_allowance a
                WHERE a.course_id = %(course)s AND a.email_key = ANY(%(keys)s) ORDER BY a.email_key FOR UPDATE
            ),
            invited AS (
                INSERT INTO enrollments_allowance (course_id, email, email_key, auto_enroll, created, created_by_id)
                SELECT %(course)s, r.e, r.k, true, now(), NULL
                FROM r LEFT JOIN invited_before b ON b.email_key = r.k
                WHERE b.auto_enroll IS NOT TRUE AND NOT EXISTS (SELECT 1 FROM acc WHERE acc.email_key = r.k) ORDER BY r.k
                ON CONFLICT (course_id, email_key) DO UPDATE SET auto_enroll = excluded.auto_enroll
                WHERE enrollments_allowance.auto_enroll IS DISTINCT FROM excluded.auto_enroll
                RETURNING email, xmax = 0 AS inserted
            )
            INSERT INTO {_AUDIT_COLUMNS}
            SELECT now(), %(course)s, NULL, i.email, CASE WHEN i.inserted THEN 'none' ELSE 'allowed' END,
                   'allowed_auto', 'import', %(reason)s, %(op)s, '', '', '', ''
            FROM invited i
        """, params)  # noqa: S608 (constants)
    return m


def _imported(course) -> tuple[int, ...]:
    """Rows an import wrote for ``course``: enrollments, invitations and audit entries."""
    from enrollments.models import Allowance, Enrollment, EnrollmentAudit

    return tuple(model.objects.filter(course=course).count() for model in (Enrollment, Allowance, EnrollmentAudit))


def _import_for(checked, course):
    """The checked import, for another course (the same rows, checked once)."""
    from organisations.models import OrgImport

    rows = [{**r, "course_ids": [course.pk]} for r in checked.rows]
    return OrgImport.objects.create(filename=checked.filename, rows=rows, errors=checked.errors, preview=checked.preview)


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
    # The import applied (the background job's body) against its floor, each
    # round on fresh courses with the rows checked once.
    rounds = []
    for n in range(ROUNDS):
        svc_course, floor_course = _course(f"IMPORTSVC{n}"), _course(f"IMPORTFLOOR{n}")
        org_import = _import_for(checked, svc_course)
        order = [("service", _timed_import, (import_run, org_import)), ("floor", import_floor_run, (floor_course, checked.rows))]
        measured = {name: _settled(run)(*args) for name, run, args in (order if n % 2 == 0 else order[::-1])}
        assert _imported(svc_course) == _imported(floor_course), (_imported(svc_course), _imported(floor_course))
        rounds.append(measured)
        print(f"  round {n + 1}: " + ", ".join(f"{k} {v.seconds:.3f} s" for k, v in measured.items()))
    med = {k: statistics.median(r[k].seconds for r in rounds) for k in rounds[0]}
    queries = {k: rounds[-1][k].queries for k in rounds[0]}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tracemalloc.start()
    import_check(name="bench.xlsx", data=data, actor=None)
    _, check_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"  check (read, validate, preview): {check_seconds:7.2f} s; preview {checked.preview}")
    print(f"  import (background job body):    {med['service']:7.3f} s  {queries['service']:>5} queries; outcome {rounds[-1]['service'].summary}")
    print(f"  floor (same reads and writes):   {med['floor']:7.3f} s  {queries['floor']:>5} queries")
    print(f"  import / floor = {med['service'] / med['floor']:6.2f}x   (goal: within 1.5x)")
    print(f"  peak Python allocations during a check {check_peak / 1e6:.1f} MB (tracemalloc); process max RSS {rss:.0f} MB")


def _timed_import(import_run, org_import):
    with Measure() as m:
        m_summary = import_run(org_import=org_import, actor=None)
    m.summary = m_summary
    return m


def main():
    name = _setup_database()
    print(f"Organisation benchmark on PostgreSQL (database {name})\n")
    bench_rule()
    bench_import()


if __name__ == "__main__":
    main()
