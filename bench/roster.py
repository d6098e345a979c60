"""Roster benchmark: the Learners tab's reads on a course of a million
enrollments, against hand-written indexed SQL in the same run, on PostgreSQL.

    DATABASE_URL=postgres://... python -m bench.roster

Creates (and drops first) its own database, ``<name>_bench_roster``, seeds
BENCH_ROSTER_SIZE learners (1,000,000 by default) in one course with
``INSERT ... SELECT generate_series`` (set-based; the trigram index is built
once afterwards rather than row by row), then times five pages as the table
asks for them (``roster_page``: the rows and the COUNT of matching rows):

- the first page (newest first);
- a search by email prefix and one by a part of a last name (trigram GIN index);
- a filter by source and a date range ((course, source, created, id) index);
- page 200, reached by its keyset cursor ((course, created, id) index).

Each is compared with the same page fetched by hand-written SQL (the same
rows and the same COUNT; the cohort of each row by the same subquery).
Figures are the best of BENCH_ROSTER_REPEAT runs after a warm-up (as timeit
does: on a shared machine the slower runs measure the neighbours), the
selector and its SQL taking turns so that both meet the same load; they are
printed, never asserted (tests pin the query counts at two sizes instead)."""

import os
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enrollment_site.settings")

from bench.common import Measure, bench_course, fresh_database  # noqa: E402

SIZE = int(os.environ.get("BENCH_ROSTER_SIZE", "1000000"))
REPEAT = int(os.environ.get("BENCH_ROSTER_REPEAT", "15"))
# BENCH_ROSTER_REUSE=1 measures again on the database a previous run seeded (same BENCH_ROSTER_SIZE).
REUSE = os.environ.get("BENCH_ROSTER_REUSE") == "1"
PAGE = 50
SURNAMES = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
            "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin"]
FIRST_NAMES = ["Ann", "Bob", "Carla", "Dmitri", "Eve", "Farid", "Grace", "Hiro", "Ines", "Jon", "Kemal", "Lena", "Mona", "Nils"]


def _seed(course_id: int, size: int) -> float:
    """``size`` users and their enrollments in the course, set-based. Returns seconds."""
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cur:
        # Built once after the rows are in: maintaining a GIN index row by row is far slower.
        cur.execute("DROP INDEX IF EXISTS accounts_user_search_trgm")
        cur.execute(
            """
            INSERT INTO accounts_user (password, is_superuser, username, first_name, last_name, email, email_key, email_key_clash,
                                       username_skeleton, is_staff, is_active, date_joined, language, date_added)
            SELECT '!', false, 'learner' || n, (%s::text[])[1 + n %% %s], (%s::text[])[1 + (n / 7) %% %s] || 'son' || n,
                   'learner' || n || '@example' || (n %% 50) || '.org', 'learner' || n || '@example' || (n %% 50) || '.org', false,
                   -- the keys User.save() derives, for these lower-case ASCII names (1 and 0 look like l and o)
                   translate('learner' || n, '10', 'lo'), false, true, now(), '', current_date
            FROM generate_series(1, %s) AS n
            """,
            [FIRST_NAMES, len(FIRST_NAMES), SURNAMES, len(SURNAMES), size],
        )
        # Sources: one in ten by code, the rest by batch, self-enrollment and the API; one a minute over about two years.
        cur.execute(
            """
            INSERT INTO enrollments_enrollment (user_id, course_id, is_active, mode, source, created, updated)
            SELECT u.id, %s, (u.id %% 20) <> 0, CASE WHEN u.id %% 3 = 0 THEN 'verified' ELSE 'audit' END,
                   (ARRAY['code', 'batch', 'batch', 'batch', 'self', 'self', 'api', 'batch', 'self', 'batch'])[1 + u.id %% 10],
                   now() - (u.id * interval '1 minute'), now() - (u.id * interval '1 minute')
            FROM accounts_user u WHERE u.username LIKE 'learner%%'
            """,
            [course_id],
        )
        cur.execute(
            "CREATE INDEX accounts_user_search_trgm ON accounts_user USING gin "
            "((UPPER((username || ' ' || email || ' ' || first_name || ' ' || last_name)::text)) gin_trgm_ops)"
        )
        cur.execute("ANALYZE")
    return time.perf_counter() - started


def _reuse_database(suffix: str) -> str:
    import django

    url = os.environ["DATABASE_URL"]
    name = url.rsplit("/", 1)[1] + "_" + suffix
    os.environ["DATABASE_URL"] = url.rsplit("/", 1)[0] + "/" + name
    django.setup()
    return name


SELECT = """
    SELECT e.id, e.user_id, e.course_id, e.is_active, e.mode, e.source, e.created, e.updated,
           (SELECT c.name FROM courses_cohortmembership m JOIN courses_cohort c ON c.id = m.cohort_id
             WHERE m.course_id = e.course_id AND m.user_id = e.user_id LIMIT 1) AS cohort_name,
           u.id, u.username, u.first_name, u.last_name, u.email
    FROM enrollments_enrollment e JOIN accounts_user u ON u.id = e.user_id
"""
SEARCH = "UPPER((u.username || ' ' || u.email || ' ' || u.first_name || ' ' || u.last_name)::text) LIKE %s"


def _hand_written(where: str, params: list, *, cursor=None):
    """The page by hand: its rows, then the COUNT of every matching row."""
    from django.db import connection

    rows_where, rows_params = where, list(params)
    if cursor is not None:
        rows_where += " AND (e.created, e.id) < (%s, %s)"
        rows_params += list(cursor)
    with connection.cursor() as cur:
        cur.execute(f"{SELECT} WHERE {rows_where} ORDER BY e.created DESC, e.id DESC LIMIT {PAGE + 1}", rows_params)
        rows = cur.fetchall()
        join = " JOIN accounts_user u ON u.id = e.user_id" if "u." in where else ""
        cur.execute(f"SELECT count(*) FROM enrollments_enrollment e{join} WHERE {where}", params)
        total = cur.fetchone()[0]
    return rows[:PAGE], total


def _best_of_both(ours, theirs):
    """Best time, queries and result of each; the two run in turn, so that both
    meet the same load from the rest of the machine."""
    ours(), theirs()  # warm-up: caches, plans
    best = {}
    for _ in range(REPEAT):
        for key, run in (("ours", ours), ("theirs", theirs)):
            with Measure() as m:
                result = run()
            if key not in best or m.seconds < best[key][0]:
                best[key] = (m.seconds, m.queries, result)
    return best["ours"], best["theirs"]


def main():
    import datetime as dt

    if REUSE:
        name = _reuse_database("bench_roster")
    else:
        name = fresh_database("bench_roster")
    from django.utils import timezone

    from courses.models import Course
    from enrollments.selectors.roster import RosterQuery, _cursor_encode, roster_page, roster_rows

    if REUSE:
        course = Course.objects.get(key="course-v1:Bench+ROSTER+2026")
        print(f"Roster benchmark on PostgreSQL (database {name}, seeded before); one course of {SIZE:,} enrollments")
    else:
        course = bench_course("ROSTER")
        seconds = _seed(course.pk, SIZE)
        print(f"Roster benchmark on PostgreSQL (database {name}); one course of {SIZE:,} enrollments, seeded in {seconds:.1f} s")

    # A month in the middle of the enrollments' span (one a minute, newest now).
    today = timezone.localdate()
    span = SIZE // 1440
    start = today - dt.timedelta(days=span // 2 + 30)
    end = start + dt.timedelta(days=29)
    start_at = timezone.make_aware(dt.datetime.combine(start, dt.time.min))
    end_at = timezone.make_aware(dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min))
    probe = SIZE // 2 + 17
    # Page 200 starts after row 199 × 50 of the newest-first order; its cursor is that row's (created, id).
    anchor = list(roster_rows(course=course, query=RosterQuery())[199 * PAGE - 1 : 199 * PAGE])[0]
    cursor = _cursor_encode(anchor, column="created", sort="-created", backwards=False)

    cases = [
        ("first page", RosterQuery(), "", "e.course_id = %s", [course.pk], None),
        (f"search by email prefix 'learner{probe}@'", RosterQuery(search=f"learner{probe}@"), "",
         f"e.course_id = %s AND {SEARCH}", [course.pk, f"%LEARNER{probe}@%"], None),
        ("search by part of a last name 'rtinezso'", RosterQuery(search="rtinezso"), "",
         f"e.course_id = %s AND {SEARCH}", [course.pk, "%RTINEZSO%"], None),
        (f"source code, enrolled {start} to {end}", RosterQuery(source="code", enrolled_from=start, enrolled_to=end), "",
         "e.course_id = %s AND e.source = 'code' AND e.created >= %s AND e.created < %s", [course.pk, start_at, end_at], None),
        ("page 200 by cursor", RosterQuery(), cursor, "e.course_id = %s", [course.pk], (anchor.created, anchor.pk)),
    ]
    print(f"\n  {'page (rows + COUNT of matching rows)':<52} {'selector':>10} {'SQL':>10} {'ratio':>7} {'queries':>8} {'matching':>10}")
    for label, query, page_cursor, where, params, position in cases:
        def selector(query=query, page_cursor=page_cursor):
            page = roster_page(course=course, query=query, cursor=page_cursor)
            return [(e.user.username, e.cohort_name) for e in page.rows], page.total

        def sql(where=where, params=params, position=position):
            return _hand_written(where, params, cursor=position)

        (ours, queries, (rows, total)), (theirs, _, (sql_rows, sql_total)) = _best_of_both(selector, sql)
        if [r[0] for r in rows] != [r[10] for r in sql_rows] or total != sql_total:
            raise SystemExit(f"{label}: the selector and the SQL disagree ({len(rows)}/{total} rows against {len(sql_rows)}/{sql_total})")
        print(f"  {label:<52} {ours * 1000:8.1f} ms {theirs * 1000:7.1f} ms {ours / theirs:6.2f}x {queries:>8} {total:>10,}")
    print("\n  goal: every ratio within 3x; the query count is the same for any size of course (tests pin it at two sizes)")


if __name__ == "__main__":
    main()
