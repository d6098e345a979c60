"""Flat at a million: every page and API call a big course touches, against a
baseline measured in the same run, on PostgreSQL.

    DATABASE_URL=postgres://... python -m bench.flat                 (small: 20,000; what `make bench` runs)
    DATABASE_URL=postgres://... python -m bench.flat --scale 1m      (1,000,000 users and enrollments)
    DATABASE_URL=postgres://... python -m bench.flat --scale 1m --rebuild

The database, ``<name>_bench_<scale>`` next to DATABASE_URL's, is built once,
set-based (``INSERT ... SELECT generate_series``; bench.roster's seeding), and
kept: a marker table in it records what it holds, and a later run whose marker
matches only migrates it and measures (``--rebuild`` builds it again). It holds
SIZE users, a big course with SIZE enrollments, a small course of 1,000 with
its team, both capped (a cap no one reaches, so that self-enrollment counts
under the course lock), and CODES codes in batches of 500 for the big course.

Each row of the table is the median of ``--runs`` runs (3) after a warm-up, the
figure here and its baseline taking turns so that both meet the same load from
the rest of the machine: compare ratios, never absolute times. Pages are
requested through Django's test Client logged in as the persona (time and SQL
statements per request):

- the enrollment list API, per persona and filter, against the same page by
  hand-written indexed SQL (``bench.api_list.flat_rows(context)`` replaces
  these rows when that module provides it);
- the Course info page and self-enrollment into a capped course, big course
  against the small one;
- the Codes tab's last page (page 1,000 of 50,000 codes) against its first;
- the reports and email rows, from ``bench.reports.flat_rows(context)`` and
  ``bench.email.flat_rows(context)`` where those modules provide them.

A hook gets the ``Context`` below and returns ``Row``s. Figures are printed,
never asserted (the tests pin query counts at two sizes instead)."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enrollment_site.settings")
# The walk asks for hundreds of pages a minute; the API's throttle is not what is measured.
os.environ.setdefault("THROTTLE_ENROLLMENTS_LIST", "100000000/min")
# WhiteNoise looks for collected static files, which the pages here do not need.
warnings.filterwarnings("ignore", message="No directory at")

from bench.common import Measure, bench_course  # noqa: E402

SCALES = {"small": 20_000, "1m": 1_000_000}
CODES = {"small": 5_000, "1m": 50_000}
WALK = {"small": 20, "1m": 500}  # pages of 100 the cursor walk follows
SMALL_COURSE = 1_000
CODE_BATCH = 500
CODES_PAGE = 50
API_PAGE = 100
# Raise when the seeding changes, so that databases built by an older version are rebuilt.
SEED_VERSION = 2


@dataclass
class Row:
    """One line of the table: the figure here and its baseline, in seconds (medians)."""

    what: str
    here: float
    baseline_what: str
    baseline: float
    queries: str = ""  # SQL statements here / in the baseline, where counted
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.here / self.baseline if self.baseline else float("inf")


@dataclass
class Context:
    """What the rows measure on: the database's courses and personas, and how to measure."""

    scale: str
    size: int
    runs: int
    big: Any
    small: Any
    platform_admin: Any
    course_admin: Any  # admin of the big and the small course
    small_staff: Any  # staff of the small course only
    codes: int
    clients: dict = field(default_factory=dict)

    def client(self, user):
        """A test Client logged in as ``user`` (one per persona)."""
        from django.test import Client

        if user.pk not in self.clients:
            client = Client()
            client.force_login(user)
            self.clients[user.pk] = client
        return self.clients[user.pk]


def medians(here: Callable[[], object], baseline: Callable[[], object], runs: int) -> tuple[float, float, str]:
    """Median seconds of ``here`` and of ``baseline`` over ``runs`` turns each
    (after one warm-up of each), and their SQL statement counts."""
    here(), baseline()
    times: dict[str, list[float]] = {"here": [], "baseline": []}
    queries = {}
    for _ in range(runs):
        for key, run in (("here", here), ("baseline", baseline)):
            with Measure() as m:
                run()
            times[key].append(m.seconds)
            queries[key] = m.queries
    return statistics.median(times["here"]), statistics.median(times["baseline"]), f"{queries['here']} / {queries['baseline']}"


# --- the database ----------------------------------------------------------------------------------


def open_database(scale: str, *, rebuild: bool) -> tuple[str, float | None]:
    """Point DATABASE_URL at ``<name>_bench_<scale>``, building it unless it holds
    what this version seeds. Returns its name and the seconds spent building
    (None when it was reused)."""
    import environ
    import psycopg

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        raise SystemExit("The benchmark runs on PostgreSQL: set DATABASE_URL=postgres://user:pass@host:5432/name")
    config = environ.Env.db_url_config(url)
    name = f"{config['NAME']}_bench_{scale}"
    connect = {"host": config["HOST"], "port": config["PORT"] or 5432, "user": config["USER"], "password": config["PASSWORD"]}
    marker = {"scale": scale, "size": SCALES[scale], "codes": CODES[scale], "version": SEED_VERSION}
    with psycopg.connect(dbname="postgres", autocommit=True, **connect) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None
    if exists and not rebuild:
        with psycopg.connect(dbname=name, **connect) as db:
            found = db.execute("SELECT to_regclass('bench_flat_marker') IS NOT NULL").fetchone()
            held = db.execute("SELECT holds FROM bench_flat_marker").fetchone() if found and found[0] else None
        reuse = held is not None and held[0] == marker
    else:
        reuse = False
    if not reuse:
        with psycopg.connect(dbname="postgres", autocommit=True, **connect) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            admin.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = url.rsplit("/", 1)[0] + "/" + name

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    # Not DEBUG's query log: it would slow every statement of both sides.
    settings.DEBUG = False
    call_command("migrate", verbosity=0)  # a reused database gets the migrations added since
    if reuse:
        return name, None
    started = time.perf_counter()
    _seed(SCALES[scale], CODES[scale])
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("CREATE TABLE bench_flat_marker (holds jsonb NOT NULL)")
        cur.execute("INSERT INTO bench_flat_marker VALUES (%s::jsonb)", [json.dumps(marker)])
    return name, time.perf_counter() - started


def _seed(size: int, codes: int) -> None:
    """The courses, people and codes the rows measure, set-based."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from bench.roster import _seed as seed_learners
    from courses.models import CourseRole

    User = get_user_model()
    big, small = bench_course("BIG"), bench_course("SMALL")
    seed_learners(big.pk, size)  # learner1..learnerN, each enrolled in the big course
    with connection.cursor() as cur:
        # The small course's enrollments are older than all of the big one's (an old course next to a
        # growing one): a plan that walks the (created) index and filters by course reads the whole table.
        cur.execute(
            """
            INSERT INTO enrollments_enrollment (user_id, course_id, is_active, mode, source, created, updated)
            SELECT u.id, %s, true, 'audit', 'batch', now() - interval '3 years' - (u.id * interval '1 hour'), now()
            FROM accounts_user u WHERE u.username LIKE 'learner%%' ORDER BY u.id LIMIT %s
            """,
            [small.pk, SMALL_COURSE],
        )
        # Codes for the big course, in batches of 500 as the product generates them.
        cur.execute(
            """
            INSERT INTO codes_codebatch (created, count, prefix, max_uses, may_exceed_cap)
            SELECT now() - (b * interval '1 minute'), %s, 'BENCH', 1, false FROM generate_series(%s, 1, -1) AS b
            """,
            [CODE_BATCH, -(-codes // CODE_BATCH)],
        )
        cur.execute("INSERT INTO codes_codebatch_courses (codebatch_id, course_id) SELECT id, %s FROM codes_codebatch", [big.pk])
        cur.execute(
            """
            INSERT INTO codes_enrollmentcode (code, normalized, batch_id, max_uses, uses, created)
            SELECT 'BENCH-' || lpad(n::text, 12, '0'), 'BENCH' || lpad(n::text, 12, '0'),
                   (SELECT min(id) FROM codes_codebatch) + (n - 1) / %s, 1, (n %% 3 = 0)::int, now()
            FROM generate_series(1, %s) AS n
            """,
            [CODE_BATCH, codes],
        )
    User.objects.create_user("bench_platform", "bench_platform@example.com", is_staff=True)
    course_admin = User.objects.create_user("bench_course_admin", "bench_course_admin@example.com")
    small_staff = User.objects.create_user("bench_small_staff", "bench_small_staff@example.com")
    CourseRole.objects.bulk_create([
        CourseRole(course=big, user=course_admin, role="admin"),
        CourseRole(course=small, user=course_admin, role="admin"),
        CourseRole(course=small, user=small_staff, role="staff"),
    ])
    # Caps no one reaches: self-enrollment succeeds, and counts under the course lock.
    type(big).objects.filter(pk=big.pk).update(max_enrollments=2 * size)
    type(small).objects.filter(pk=small.pk).update(max_enrollments=2 * SMALL_COURSE)
    with connection.cursor() as cur:
        cur.execute("ANALYZE")


def context(scale: str, runs: int) -> Context:
    from django.contrib.auth import get_user_model

    from courses.models import Course

    User = get_user_model()
    users = User.objects.in_bulk(["bench_platform", "bench_course_admin", "bench_small_staff"], field_name="username")
    return Context(
        scale=scale, size=SCALES[scale], runs=runs,
        big=Course.objects.get(key="course-v1:Bench+BIG+2026"), small=Course.objects.get(key="course-v1:Bench+SMALL+2026"),
        platform_admin=users["bench_platform"], course_admin=users["bench_course_admin"], small_staff=users["bench_small_staff"],
        codes=CODES[scale],
    )


# --- the enrollment list API (bench.api_list.flat_rows replaces these when it exists) ------------------

API_COLUMNS = "u.username, u.email, c.key, e.is_active, e.mode, e.created"
API_FROM = "enrollments_enrollment e JOIN accounts_user u ON u.id = e.user_id JOIN courses_course c ON c.id = e.course_id"


def _sql_page(where: str, params: list, *, after=None) -> list[tuple]:
    """The API's page by hand-written SQL over the (created, id) and (course, created, id) indexes."""
    from django.db import connection

    if after is not None:
        where += " AND (e.created, e.id) < (%s, %s)"
        params = [*params, *after]
    with connection.cursor() as cur:
        cur.execute(f"SELECT {API_COLUMNS}, e.id FROM {API_FROM} WHERE {where} ORDER BY e.created DESC, e.id DESC LIMIT {API_PAGE + 1}", params)
        return cur.fetchall()[:API_PAGE]


def _sql_page_of_team_member(course_ids: list[int], user_id: int) -> list[tuple]:
    """A team member's page by hand: the newest of their courses' and of their
    own enrollments, one index range per side (UNION rather than OR)."""
    from django.db import connection

    side = "SELECT e.id, e.created FROM enrollments_enrollment e WHERE {} ORDER BY e.created DESC, e.id DESC LIMIT %s"
    with connection.cursor() as cur:
        cur.execute(
            f"""
            SELECT {API_COLUMNS}, e.id FROM (({side.format("e.course_id = ANY(%s)")}) UNION ({side.format("e.user_id = %s")})) AS page
            JOIN enrollments_enrollment e ON e.id = page.id JOIN accounts_user u ON u.id = e.user_id JOIN courses_course c ON c.id = e.course_id
            ORDER BY e.created DESC, e.id DESC LIMIT %s
            """,
            [course_ids, API_PAGE + 1, user_id, API_PAGE + 1, API_PAGE + 1],
        )
        return cur.fetchall()[:API_PAGE]


def _api(ctx: Context, user, params: dict) -> Callable[[], dict]:
    from django.urls import reverse

    client, url = ctx.client(user), reverse("api_enrollments")

    def get():
        response = client.get(url, params)
        if response.status_code != 200:
            raise SystemExit(f"GET {url} {params} as {user.username}: {response.status_code} {response.content[:300]!r}")
        return response.json()

    return get


def _same_rows(what: str, api: dict, sql: list[tuple]) -> None:
    if [r["username"] for r in api["results"]] != [r[0] for r in sql]:
        raise SystemExit(f"{what}: the API and the SQL disagree ({len(api['results'])} rows against {len(sql)})")


def api_rows(ctx: Context) -> list[Row]:
    """The API rows of the issue's table, each against the same page by indexed SQL."""
    import datetime as dt

    from django.utils import timezone

    big, small = ctx.big, ctx.small
    since = timezone.now() - dt.timedelta(days=30)
    cases = [
        ("platform admin, page 1", ctx.platform_admin, {}, lambda: _sql_page("TRUE", [])),
        ("platform admin, course_id", ctx.platform_admin, {"course_id": big.key}, lambda: _sql_page("e.course_id = %s", [big.pk])),
        ("platform admin, course_id + days=30", ctx.platform_admin, {"course_id": big.key, "days": 30},
         lambda: _sql_page("e.course_id = %s AND e.created >= %s", [big.pk, since])),
        ("admin of the big and the small course, course_id=small", ctx.course_admin, {"course_id": small.key},
         lambda: _sql_page("e.course_id = %s", [small.pk])),
        ("staff of the small course only", ctx.small_staff, {}, lambda: _sql_page_of_team_member([small.pk], ctx.small_staff.pk)),
        ("staff of the small course only, course_id=small", ctx.small_staff, {"course_id": small.key},
         lambda: _sql_page("e.course_id = %s", [small.pk])),
    ]
    rows = []
    for what, user, params, sql in cases:
        here = _api(ctx, user, params)
        _same_rows(what, here(), sql())
        seconds, baseline, queries = medians(here, sql, ctx.runs)
        rows.append(Row(f"`GET /api/so2/v1/enrollments`, {what}", seconds, "the same page by indexed SQL", baseline, queries))
    rows.append(_api_walk(ctx))
    return rows


def _api_walk(ctx: Context) -> Row:
    """Following ``next`` for WALK pages of the big course, per page, against the SQL walking the same keyset."""
    from urllib.parse import parse_qs, urlsplit

    pages = WALK[ctx.scale]
    first = _api(ctx, ctx.platform_admin, {"course_id": ctx.big.key})
    client = ctx.client(ctx.platform_admin)

    def api_walk():
        page = first()
        for _ in range(pages - 1):
            cursor = parse_qs(urlsplit(page["next"]).query)["cursor"][0]
            page = client.get("/api/so2/v1/enrollments", {"course_id": ctx.big.key, "cursor": cursor}).json()
        return page

    def sql_walk():
        rows = _sql_page("e.course_id = %s", [ctx.big.pk])
        for _ in range(pages - 1):
            rows = _sql_page("e.course_id = %s", [ctx.big.pk], after=(rows[-1][5], rows[-1][6]))
        return rows

    _same_rows("the walk", api_walk(), sql_walk())
    seconds, baseline, queries = medians(api_walk, sql_walk, ctx.runs)
    return Row(f"walking {pages} pages by cursor (per page)", seconds / pages, "the same pages by indexed SQL", baseline / pages,
               f"{queries} for {pages} pages")


# --- pages and self-enrollment ----------------------------------------------------------------------


def _page(ctx: Context, user, url: str) -> Callable[[], object]:
    client = ctx.client(user)

    def get():
        response = client.get(url)
        if response.status_code != 200:
            raise SystemExit(f"GET {url} as {user.username}: {response.status_code}")
        return response

    return get


def course_info_row(ctx: Context) -> Row:
    from django.urls import reverse

    big = _page(ctx, ctx.course_admin, reverse("instructor_info", args=[ctx.big.key]))
    small = _page(ctx, ctx.course_admin, reverse("instructor_info", args=[ctx.small.key]))
    seconds, baseline, queries = medians(big, small, ctx.runs)
    return Row(f"Course info page (counts and chart), {ctx.size:,} enrollments", seconds,
               f"the same page on a course of {SMALL_COURSE:,}", baseline, queries)


def self_enroll_row(ctx: Context) -> Row:
    """A new learner enrolls themself into the capped big course, and one into the capped small one."""
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse

    from enrollments.models import Enrollment

    User = get_user_model()

    def learner():
        # A new person each turn, made and logged in outside the timing.
        name = f"bench_self_{uuid.uuid4().hex[:12]}"
        user = User.objects.create_user(name, f"{name}@example.com")
        client = Client()
        client.force_login(user)
        return user, client

    # Not medians(): each turn needs a new learner.
    seconds: dict[str, list[float]] = {"big": [], "small": []}
    queries = {}
    for _ in range(ctx.runs + 1):
        for key, course in (("big", ctx.big), ("small", ctx.small)):
            user, client = learner()
            with Measure() as m:
                response = client.post(reverse("self_enroll", args=[course.key]))
            if response.status_code != 302 or not Enrollment.objects.filter(user=user, course=course, is_active=True).exists():
                raise SystemExit(f"self-enrollment into {course.key} did not enroll ({response.status_code})")
            seconds[key].append(m.seconds)
            queries[key] = m.queries
    # The first turn is the warm-up.
    here, baseline = statistics.median(seconds["big"][1:]), statistics.median(seconds["small"][1:])
    return Row(f"self-enrollment into a capped course of {ctx.size:,}", here, f"the same on a course of {SMALL_COURSE:,}", baseline,
               f"{queries['big']} / {queries['small']}")


def codes_row(ctx: Context) -> Row:
    """The Codes tab's last page (page 1,000 of 50,000 codes) against its first.
    The deep page is reached as an old bookmark would: ``?page=N``, following
    the redirect to its cursor where the table pages by keyset."""
    from django.urls import reverse

    url = reverse("instructor_codes", args=[ctx.big.key])
    last = -(-ctx.codes // CODES_PAGE)
    response = ctx.client(ctx.course_admin).get(url, {"page": last})
    deep_url = response["Location"] if response.status_code == 302 else f"{url}?page={last}"
    deep = _page(ctx, ctx.course_admin, deep_url)
    first = _page(ctx, ctx.course_admin, url)
    seconds, baseline, queries = medians(deep, first, ctx.runs)
    return Row(f"Codes tab, page {last:,} of {ctx.codes:,} codes", seconds, "page 1", baseline, queries)


# --- rows from other benchmarks' modules ---------------------------------------------------------------


def hook_rows(module_name: str, ctx: Context) -> list[Row] | str:
    """``module_name.flat_rows(ctx)`` if that module exists and has it; otherwise why not."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        return f"{module_name} does not exist yet"
    flat_rows = getattr(module, "flat_rows", None)
    if flat_rows is None:
        return f"{module_name} has no flat_rows(context) yet: run python -m {module_name}"
    return [row if isinstance(row, Row) else Row(**row) for row in flat_rows(ctx)]


SECTIONS: list[tuple[str, Callable[[Context], list[Row] | str]]] = [
    ("enrollment list API", lambda ctx: hook_rows("bench.api_list", ctx) if _has_hook("bench.api_list") else api_rows(ctx)),
    ("Course info page", lambda ctx: [course_info_row(ctx)]),
    ("self-enrollment", lambda ctx: [self_enroll_row(ctx)]),
    ("Codes tab", lambda ctx: [codes_row(ctx)]),
    ("reports", lambda ctx: hook_rows("bench.reports", ctx)),
    ("email", lambda ctx: hook_rows("bench.email", ctx)),
]


def _has_hook(module_name: str) -> bool:
    try:
        return hasattr(importlib.import_module(module_name), "flat_rows")
    except ModuleNotFoundError:
        return False


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.flat", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="small", help="small: 20,000 enrollments (default); 1m: 1,000,000")
    parser.add_argument("--rebuild", action="store_true", help="build the database again even if it holds this scale")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure, of which the median is shown (default 3)")
    parser.add_argument("--only", action="append", choices=[name for name, _ in SECTIONS], help="measure only these rows (repeatable)")
    args = parser.parse_args(argv)

    name, built = open_database(args.scale, rebuild=args.rebuild)
    ctx = context(args.scale, args.runs)
    how = f"built in {built:.0f} s" if built is not None else "built before, reused"
    print(f"Flat benchmark on PostgreSQL, database {name} ({how}): {ctx.size:,} users, a course of {ctx.size:,} enrollments, "
          f"one of {SMALL_COURSE:,}, {ctx.codes:,} codes; medians of {args.runs} runs, each against its baseline in the same run\n")
    print("| what | here | baseline in the same run | ratio | SQL statements (here / baseline) |")
    print("|---|---|---|---|---|")
    skipped = []
    for section, measure in SECTIONS:
        if args.only and section not in args.only:
            continue
        rows = measure(ctx)
        if isinstance(rows, str):
            skipped.append(f"{section}: {rows}")
            continue
        for row in rows:
            print(f"| {row.what} | {_ms(row.here)} | {row.baseline_what}: {_ms(row.baseline)} | {row.ratio:.1f}x | {row.queries} |", flush=True)
    for line in skipped:
        print(f"\nnot measured: {line}")


if __name__ == "__main__":
    main()
