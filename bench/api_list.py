"""Enrollment list API benchmark: ``GET /api/so2/v1/enrollments`` for every
persona and filter on a course of a million enrollments, against the same page
fetched by hand-written indexed SQL in the same run, on PostgreSQL.

    DATABASE_URL=postgres://... python -m bench.api_list

Creates (and drops first) its own database, ``<name>_bench_api``, seeded as the
roster benchmark seeds its course (``bench.roster._seed``: BENCH_API_SIZE users
and their enrollments in one course, 1,000,000 by default, set-based), plus a
small course of 1,000 of those users and the personas: a platform
administrator, an admin of the big and the small course, staff of the small
course only (each on the team is enrolled in their courses, as the product
does). With BENCH_API_REUSE=1 it measures again on the database a previous run
seeded (``make bench`` runs a small size; the million takes a few minutes once).

Each row is a request through the whole stack (token authentication, throttle,
middleware, JSON) against the same page by hand: the same rows and columns
(the enrollment's period and status too), newest first, one indexed query. The
response's JSON is parsed outside the timing: that is the client's work. Figures are the best of BENCH_API_REPEAT runs
after a warm-up, the two taking turns so that both meet the same load; they are
printed, never asserted (tests pin the query counts at two sizes instead).

``bench.flat`` seeds its database with :func:`seed_personas` and takes its API
rows from :func:`flat_rows` (what ``make bench`` runs); run this module alone
for the extra columns at a size of your choice."""

import json
import os
import time
from dataclasses import dataclass

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enrollment_site.settings")

from bench.common import Measure, bench_course, fresh_database  # noqa: E402

SIZE = int(os.environ.get("BENCH_API_SIZE", "1000000"))
REPEAT = int(os.environ.get("BENCH_API_REPEAT", "9"))
WALK = int(os.environ.get("BENCH_API_WALK", "500"))  # pages walked by cursor
REUSE = os.environ.get("BENCH_API_REUSE") == "1"
SMALL = 1000
PAGE = 100  # the API's default page size
URL = "/api/so2/v1/enrollments"
BIG_KEY, SMALL_KEY = "course-v1:Bench+ROSTER+2026", "course-v1:Bench+SMALL+2026"


@dataclass
class Row:
    label: str
    ours: float  # seconds, best of the runs (per page for the walk): the whole request
    sql: float  # the same page by hand-written SQL
    queries: int
    query: float | None = None  # the API's page query alone (enrollment_list_page), where the code has it

    @property
    def ratio(self) -> float:
        return self.ours / self.sql


def seed_personas(big) -> None:
    """The small course of ``SMALL`` learners of the big one, and the personas
    with their tokens, on a database where ``big`` has its enrollments."""
    from django.db import connection
    from rest_framework.authtoken.models import Token

    from accounts.models import User
    from courses.models import CourseRole
    from enrollments.models import Enrollment

    small = bench_course("SMALL")
    with connection.cursor() as cur:
        cur.execute(
            """
            INSERT INTO enrollments_enrollment (user_id, course_id, is_active, mode, source, created, updated)
            SELECT e.user_id, %s, e.is_active, e.mode, e.source, e.created + interval '7 seconds', e.updated
            FROM enrollments_enrollment e WHERE e.course_id = %s AND e.user_id %% %s = 0
            """,
            # Every n-th learner of the big course, so that the small course's
            # enrollments are spread over the big one's whole history, as a second
            # course's would be: nowhere near the newest of the site.
            [small.pk, big.pk, max(1, big.enrollments.count() // SMALL)],
        )
    admin = User.objects.create(username="bench-platform-admin", email="platform@example.org", is_staff=True)
    both = User.objects.create(username="bench-admin-of-both", email="both@example.org")
    staff = User.objects.create(username="bench-staff-of-small", email="staff@example.org")
    CourseRole.objects.bulk_create([
        CourseRole(user=both, course=big, role="admin"),
        CourseRole(user=both, course=small, role="admin"),
        CourseRole(user=staff, course=small, role="staff"),
    ])
    Enrollment.objects.bulk_create([
        Enrollment(user=both, course=big), Enrollment(user=both, course=small), Enrollment(user=staff, course=small),
    ])
    for user in (admin, both, staff):
        Token.objects.create(user=user)
    with connection.cursor() as cur:
        cur.execute("ANALYZE")


def prepare(suffix: str = "bench_api") -> str:
    """A database seeded for :func:`measure`: made afresh, or with
    BENCH_API_REUSE=1 the one a previous run left. Returns its name."""
    if REUSE:
        import django

        url = os.environ["DATABASE_URL"]
        name = url.rsplit("/", 1)[1] + "_" + suffix
        os.environ["DATABASE_URL"] = url.rsplit("/", 1)[0] + "/" + name
        django.setup()
        print(f"Enrollment list API benchmark (database {name}, seeded before)")
        return name
    from bench.roster import _seed

    name = fresh_database(suffix)
    big = bench_course("ROSTER")
    seconds = _seed(big.pk, SIZE)
    started = time.perf_counter()
    seed_personas(big)
    seconds += time.perf_counter() - started
    print(f"Enrollment list API benchmark (database {name}); a course of {SIZE:,} enrollments and one of {SMALL:,}, seeded in {seconds:.0f} s")
    return name


TEAM_BRANCH = f"SELECT id FROM enrollments_enrollment WHERE course_id = %s ORDER BY created DESC, id DESC LIMIT {PAGE + 1}"
HAND_WRITTEN = """
    SELECT u.username, u.email, c.key, e.is_active, e.mode, e.created, e.id, e.access_from, e.access_until,
           CASE WHEN e.access_until <= now() THEN 'expired' WHEN NOT e.is_active THEN 'inactive'
                WHEN e.access_from > now() THEN 'upcoming' ELSE 'active' END
    FROM enrollments_enrollment e JOIN accounts_user u ON u.id = e.user_id JOIN courses_course c ON c.id = e.course_id
    WHERE {where} ORDER BY e.created DESC, e.id DESC LIMIT {limit}
"""


def _sql_page(where: str, params: list, *, after=None) -> list[tuple]:
    from django.db import connection

    if after is not None:
        where += " AND (e.created, e.id) < (%s, %s)"
        params = [*params, *after]
    with connection.cursor() as cur:
        cur.execute(HAND_WRITTEN.format(where=where, limit=PAGE + 1), params)
        return cur.fetchall()[:PAGE]


def _client(username: str):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.get(user__username=username).key}")
    return client


def _get(client, url, params=None):
    """The response, whose JSON the caller reads outside the timing: parsing it is the client's work, not the API's."""
    response = client.get(url, params)
    if response.status_code != 200:
        raise SystemExit(f"{url} {params}: {response.status_code} {response.content[:300]!r}")
    return response


def _best_of(runs: dict, repeat: int) -> dict:
    """Best time, queries and result of each run; they take turns, so that
    all meet the same load from the rest of the machine."""
    for run in runs.values():
        run()  # warm-up: caches, plans
    best: dict = {}
    for _ in range(repeat):
        for key, run in runs.items():
            with Measure() as m:
                result = run()
            if key not in best or m.seconds < best[key][0]:
                best[key] = (m.seconds, m.queries, result)
    return best


def _same(label: str, response, rows: list[tuple]) -> None:
    got = [(r["username"], r["course_id"]) for r in response.json()["results"]]
    want = [(r[0], r[2]) for r in rows]
    if got != want:
        raise SystemExit(f"{label}: the API and the SQL disagree ({got[:3]}… against {want[:3]}…)")


def _selector():
    """The API's page query (``enrollment_list_page``), where this version of the code has it."""
    try:
        from enrollments.selectors.api_list import enrollment_list_page
    except ImportError:
        return None
    return enrollment_list_page


def measure(*, repeat: int = REPEAT, walk: int = WALK, big_key: str = BIG_KEY, small_key: str = SMALL_KEY,
            echo: bool = True) -> list[Row]:
    """Every persona and filter of the issue's table, each against its
    hand-written page in the same run. Prints the rows (unless not ``echo``) and returns them.

    Columns: the whole request; the page's query alone, as the API runs it
    (``enrollment_list_page``, with its Python around the statement); the hand-written SQL."""
    from datetime import timedelta

    from django.core.cache import cache
    from django.test import override_settings
    from django.utils import timezone

    from accounts.models import User
    from courses.models import Course

    big, small = Course.objects.get(key=big_key), Course.objects.get(key=small_key)
    size = big.enrollments.count()
    walk = max(1, min(walk, size // PAGE - 1))  # no further than the course goes
    since = timezone.now() - timedelta(days=30)
    cases: list[tuple[str, str, dict, str, list]] = [
        ("platform admin, page 1", "bench-platform-admin", {}, "true", []),
        ("platform admin, course_id", "bench-platform-admin", {"course_id": big_key}, "e.course_id = %s", [big.pk]),
        ("platform admin, course_id + days=30", "bench-platform-admin", {"course_id": big_key, "days": 30},
         "e.course_id = %s AND e.created >= %s", [big.pk, since]),
        ("platform admin, days=30", "bench-platform-admin", {"days": 30}, "e.created >= %s", [since]),
        ("platform admin, username", "bench-platform-admin", {"username": "learner1000"},
         "e.user_id = (SELECT id FROM accounts_user WHERE username = %s)", ["learner1000"]),
        # By hand, a team member's page is the newest of each of their courses' newest pages.
        ("admin of big and small, page 1", "bench-admin-of-both", {},
         f"e.id IN (SELECT id FROM ({TEAM_BRANCH}) b UNION ALL SELECT id FROM ({TEAM_BRANCH}) s)", [big.pk, small.pk]),
        ("admin of big and small, course_id=small", "bench-admin-of-both", {"course_id": small_key}, "e.course_id = %s", [small.pk]),
        ("staff of small, page 1", "bench-staff-of-small", {}, "e.course_id = %s", [small.pk]),
        ("staff of small, course_id=small + days=30", "bench-staff-of-small", {"course_id": small_key, "days": 30},
         "e.course_id = %s AND e.created >= %s", [small.pk, since]),
    ]
    selector = _selector()
    rows: list[Row] = []
    show = _print if echo else lambda row: None
    if echo:
        print(f"\n  {'GET ' + URL + f', {size:,} enrollments':<52} {'API':>10} {'query':>10} {'SQL':>10} {'ratio':>7} {'query/SQL':>9} {'queries':>8}")
    # Unthrottled: hundreds of requests a minute are the point here.
    with override_settings(REST_FRAMEWORK=_unthrottled()):
        for label, persona, params, where, sql_params in cases:
            client, user = _client(persona), User.objects.get(username=persona)
            runs: dict = {
                "api": lambda client=client, params=params: _get(client, URL, params),
                "sql": lambda where=where, sql_params=sql_params: _sql_page(where, sql_params),
            }
            if selector is not None:
                filters = {"course_key": params.get("course_id", ""), "username": params.get("username", ""),
                           "since": since if "days" in params else None}
                runs["query"] = lambda user=user, filters=filters: selector(user=user, **filters, limit=PAGE + 1)
            cache.clear()
            best = _best_of(runs, repeat)
            _same(label, best["api"][2], best["sql"][2])
            rows.append(Row(label, best["api"][0], best["sql"][0], best["api"][1], best.get("query", (None,))[0]))
            show(rows[-1])

        # Walking pages by cursor, as the platform admin over the big course.
        client, admin = _client("bench-platform-admin"), User.objects.get(username="bench-platform-admin")

        def walk_api():
            response, url = None, None
            for _ in range(walk):
                response = _get(client, url) if url else _get(client, URL, {"course_id": big_key})
                # Following the links needs the body: parsed inside the timing here, as any client walking pages does.
                url = json.loads(response.content)["next"]
            return response

        def walk_query():
            after = None
            for _ in range(walk):
                page = selector(user=admin, course_key=big_key, after=after, limit=PAGE + 1)[:PAGE]
                after = (page[-1].created, page[-1].id)

        def walk_sql():
            page, after = [], None
            for _ in range(walk):
                page = _sql_page("e.course_id = %s", [big.pk], after=after)
                after = (page[-1][5], page[-1][6])
            return page

        cache.clear()
        runs = {"api": walk_api, "sql": walk_sql, **({"query": walk_query} if selector else {})}
        best = _best_of(runs, max(1, repeat // 3))
        _same("walk", best["api"][2], best["sql"][2])
        query = best["query"][0] / walk if selector else None
        rows.append(Row(f"walking {walk} pages by cursor, per page", best["api"][0] / walk, best["sql"][0] / walk,
                        best["api"][1] // walk, query))
        show(rows[-1])
    if echo:
        print("\n  goal: every ratio within 3x; the query count is the same for any size of course (tests pin it at two sizes)")
    return rows


def _unthrottled() -> dict:
    from django.conf import settings

    rates = {scope: "1000000/min" for scope in settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]}
    return {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}


def _print(row: Row) -> None:
    query = f"{row.query * 1000:7.1f} ms" if row.query is not None else f"{'-':>10}"
    query_ratio = f"{row.query / row.sql:8.2f}x" if row.query is not None else f"{'-':>9}"
    print(f"  {row.label:<52} {row.ours * 1000:7.1f} ms {query} {row.sql * 1000:7.1f} ms {row.ratio:6.2f}x {query_ratio} {row.queries:>8}")


def flat_rows(ctx) -> list[dict]:
    """The API rows of ``bench.flat``'s table, measured by :func:`measure` on its
    database (seeded with :func:`seed_personas`): the whole request against the
    same page by hand-written SQL, best of the context's runs."""
    from bench.flat import WALK as FLAT_WALK

    rows = measure(repeat=ctx.runs, walk=FLAT_WALK[ctx.scale], big_key=ctx.big.key, small_key=ctx.small.key,
                   echo=False)
    return [
        {"what": f"`GET {URL}`, {row.label}", "here": row.ours, "baseline_what": "the same page by indexed SQL", "baseline": row.sql,
         "queries": f"{row.queries} / 1", "note": f"its query alone {row.query * 1000:.1f} ms" if row.query is not None else ""}
        for row in rows
    ]


def main():
    prepare()
    measure()


if __name__ == "__main__":
    main()
