"""Audit log benchmark, on PostgreSQL: the course's audit log page at
millions of audit rows, against hand-written indexed SQL in the same run.

    DATABASE_URL=postgres://... python -m bench.audit_log

Seeds one course with BENCH_AUDIT_ROWS audit rows (2,000,000 by default; set
based: one INSERT ... SELECT FROM generate_series) spread over a year, over
ten sources, five actors, five kinds of change and operations of 1,000 rows,
plus a second course's rows around them. Then, for each page the log shows
(the first page; filtered by source and a date range; by actor; by one
operation with its size; page 200 by cursor; a learner's story), it times the
selector the page uses and a hand-written SQL query returning the same rows
(median of BENCH_ROUNDS runs each, interleaved) and prints both, their ratio
and the selector's SQL statement count. It creates (and drops first) its own
database, ``<name>_bench_audit``. Figures are printed, never asserted (tests
pin the query counts)."""

import os
import statistics
import time
import uuid
from datetime import date, timedelta

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enrollment_site.settings")

from bench.common import Measure, bench_course, fresh_database  # noqa: E402

ROWS = int(os.environ.get("BENCH_AUDIT_ROWS", "2000000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "25"))
OPERATION_SIZE = 1000
SOURCES = ["batch", "api", "admin", "code", "rule", "unit", "import", "self", "team", "activation"]
STATES = ["enrolled", "unenrolled", "allowed", "allowed_auto", "none"]


def _seed(course, other, actors, person) -> float:
    """The audit rows, set based; every column the model has (later ones at
    their defaults) so that the seed keeps up with the model."""
    from django.db import connection

    from enrollments.models import EnrollmentAudit

    computed = {
        # one row a ~16 seconds over a year, newest last; ties every 7 rows (a batch shares its timestamp)
        "created": "now() - ((%(rows)s - (g / 7) * 7) * interval '15 seconds')",
        "actor_id": "(%(actors)s::int[])[1 + g %% 5]",
        "course_id": "CASE WHEN g %% 20 = 0 THEN %(other)s ELSE %(course)s END",
        "user_id": "CASE WHEN g %% 99991 = 0 THEN %(person)s ELSE NULL END",
        "identifier": "CASE WHEN g %% 99991 = 0 THEN 'storyperson' ELSE 'person' || g || '@example.com' END",
        "state_before": "'none'",
        "state_after": "(%(states)s::text[])[1 + g %% 5]",
        "source": "(%(sources)s::text[])[1 + (g / 7) %% 10]",
        "reason": "''",
        "operation_id": f"md5('op' || (g / {OPERATION_SIZE}))::uuid",
    }
    params = {
        "rows": ROWS, "actors": actors, "other": other.pk, "course": course.pk, "person": person.pk, "states": STATES, "sources": SOURCES,
    }
    columns, values = [], []
    for field in EnrollmentAudit._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(connection.ops.quote_name(field.column))
        if field.attname in computed:
            values.append(computed[field.attname])
        else:
            name = f"default_{field.attname}"
            params[name] = field.get_db_prep_save(field.get_default(), connection)
            values.append(f"%({name})s")
    sql = (
        f"INSERT INTO {EnrollmentAudit._meta.db_table} ({', '.join(columns)}) "  # noqa: S608 (names come from the model)
        f"SELECT {', '.join(values)} FROM generate_series(1, %(rows)s) AS g"
    )
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        cursor.execute(f"ANALYZE {EnrollmentAudit._meta.db_table}")  # noqa: S608
    return time.perf_counter() - started


PAGE_SQL = """
SELECT a.id, a.created, a.identifier, a.state_before, a.state_after, a.source, a.reason, a.operation_id, a.course_id,
       a.actor_id, a.user_id, actor.username, u.username, u.email
FROM enrollments_enrollmentaudit a
LEFT JOIN accounts_user actor ON actor.id = a.actor_id
LEFT JOIN accounts_user u ON u.id = a.user_id
WHERE a.course_id = %s {where}
ORDER BY a.created DESC, a.id DESC
LIMIT 51
"""


def _sql(where: str, params: list):
    from django.db import connection

    def run():
        with connection.cursor() as cursor:
            cursor.execute(PAGE_SQL.format(where=where), params)
            return cursor.fetchall()

    return run


def _medians(ours, theirs) -> tuple[float, float]:
    """Median seconds of each, run in turns so that the load of a shared
    machine weighs on both alike."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(ROUNDS):
        for run, seconds in ((ours, times[0]), (theirs, times[1])):
            started = time.perf_counter()
            run()
            seconds.append(time.perf_counter() - started)
    return statistics.median(times[0]), statistics.median(times[1])


def _compare(label: str, ours, theirs, *, same=None) -> None:
    # Warm both (plans, caches), check they agree, then time them interleaved.
    a, b = ours(), theirs()
    if same is not None:
        assert same(a, b), f"{label}: the selector and the SQL disagree"
    with Measure() as m:
        ours()
    t_ours, t_sql = _medians(ours, theirs)
    print(f"{label:<44} {t_ours * 1000:>9.2f} {t_sql * 1000:>9.2f} {t_ours / t_sql:>7.2f}x {m.queries:>8}")


def _ids(rows) -> list[int]:
    return [r.pk for r in rows]


def main():
    name = fresh_database("bench_audit")
    from accounts.models import User
    from enrollment_site.lib.keyset import Cursor
    from enrollments.models import EnrollmentAudit
    from enrollments.selectors.audit_log import AuditFilter, audit_log_page, operation_summaries
    from enrollments.selectors.history import learner_story

    course, other = bench_course("AUDIT"), bench_course("OTHER")
    actors = [User.objects.create(username=f"actor{i}", email=f"actor{i}@example.com").pk for i in range(5)]
    person = User.objects.create(username="storyperson", email="storyperson@example.com")
    print(f"Audit log benchmark on PostgreSQL (database {name})")
    seconds = _seed(course, other, actors, person)
    total = EnrollmentAudit.objects.filter(course=course).count()
    print(f"seeded {ROWS:,} audit rows ({total:,} in the course) in {seconds:.1f} s (one INSERT ... SELECT)\n")
    print(f"{'page (median of ' + str(ROUNDS) + ' runs)':<44} {'ours ms':>9} {'SQL ms':>9} {'ratio':>8} {'queries':>8}")

    def page(filters, cursor=None):
        return lambda: audit_log_page(course=course, filters=filters, cursor=cursor).rows

    def same(a, b):
        return _ids(a) == [row[0] for row in b[:50]]

    _compare("first page", page(AuditFilter()), _sql("", [course.pk]), same=same)

    since, until = date.today() - timedelta(days=200), date.today() - timedelta(days=100)
    from enrollments.selectors.audit_log import _day_start

    start, end = _day_start(since), _day_start(until + timedelta(days=1))
    _compare(
        "source=code, 100-day range",
        page(AuditFilter(source="code", since=since, until=until)),
        _sql("AND a.source = %s AND a.created >= %s AND a.created < %s", [course.pk, "code", start, end]),
        same=same,
    )
    _compare("changed by one actor", page(AuditFilter(actor_id=actors[2])), _sql("AND a.actor_id = %s", [course.pk, actors[2]]), same=same)
    _compare("change to 'unenrolled'", page(AuditFilter(action="unenrolled")), _sql("AND a.state_after = %s", [course.pk, "unenrolled"]), same=same)

    operation = EnrollmentAudit.objects.filter(course=course).order_by("-created", "-id").values_list("operation_id", flat=True)[5000]
    _compare("one operation", page(AuditFilter(operation_id=operation)), _sql("AND a.operation_id = %s", [course.pk, operation]), same=same)

    def summaries():
        rows = audit_log_page(course=course, filters=AuditFilter(), cursor=None).rows
        return operation_summaries(course=course, operation_ids=[r.operation_id for r in rows])

    from django.db import connection

    def summaries_sql():
        with connection.cursor() as cursor:
            cursor.execute(PAGE_SQL.format(where=""), [course.pk])
            ops = sorted({str(row[7]) for row in cursor.fetchall()[:50]})
            cursor.execute(
                "SELECT operation_id, count(*), min(created), max(created) FROM enrollments_enrollmentaudit "
                "WHERE course_id = %s AND operation_id = ANY(%s::uuid[]) GROUP BY operation_id", [course.pk, ops],
            )
            return cursor.fetchall()

    _compare("first page + sizes of its operations", summaries, summaries_sql,
             same=lambda a, b: {k: s.changes for k, s in a.items()} == {uuid.UUID(str(r[0])): r[1] for r in b})

    # Page 200 by cursor: the cursor the Older link of page 199 carries.
    cursor = None
    for _ in range(199):
        cursor = Cursor.decode(audit_log_page(course=course, filters=AuditFilter(), cursor=cursor).next_cursor)
    assert cursor is not None
    _compare(
        "page 200 by cursor",
        page(AuditFilter(), cursor),
        _sql("AND a.created <= %s AND NOT (a.created = %s AND a.id >= %s)", [course.pk, cursor.created, cursor.created, cursor.pk]),
        same=same,
    )

    def story_sql():
        # The same five reads by hand: the account, its enrollment and
        # invitation, its audit rows and the emails to its address.
        with connection.cursor() as cursor:
            cursor.execute("SELECT id, username, email FROM accounts_user WHERE is_active AND lower(username) = %s ORDER BY id", ["storyperson"])
            user_id, _, email = cursor.fetchone()
            cursor.execute("SELECT id, is_active, mode FROM enrollments_enrollment WHERE course_id = %s AND user_id = %s", [course.pk, user_id])
            cursor.execute("SELECT id FROM enrollments_allowance WHERE course_id = %s AND email_key = %s", [course.pk, email.lower()])
            cursor.execute(
                "SELECT a.id, a.created, a.identifier, a.state_before, a.state_after, a.source, a.reason, a.operation_id, actor.username "
                "FROM enrollments_enrollmentaudit a LEFT JOIN accounts_user actor ON actor.id = a.actor_id "
                "WHERE a.course_id = %s AND (a.user_id = %s OR lower(a.identifier) = ANY(%s)) ORDER BY a.created DESC, a.id DESC LIMIT 501",
                [course.pk, user_id, ["storyperson", email.lower()]],
            )
            rows = cursor.fetchall()
            cursor.execute(
                "SELECT id, kind, status, created FROM enrollments_notification WHERE course_id = %s AND recipient_key = ANY(%s) "
                "ORDER BY created DESC, id DESC LIMIT 501", [course.pk, [email.lower()]],
            )
            return rows

    _compare("a learner's story (5 queries each)", lambda: learner_story(course=course, who="storyperson").entries, story_sql,
             same=lambda a, b: [e.audit.pk for e in a] == [r[0] for r in b])
    print("\nratios are ours / hand-written SQL in this run; the SQL uses the same indexes (see EnrollmentAudit.Meta.indexes)")


if __name__ == "__main__":
    main()
