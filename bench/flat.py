"""Flat at a million: every page and API call a big course touches, against a
baseline measured in the same run, on PostgreSQL.

    DATABASE_URL=postgres://... python -m bench.flat                 (small: 20,000; what `make bench` runs)
    DATABASE_URL=postgres://... python -m bench.flat --scale 1m      (1,000,000 users and enrollments)
    DATABASE_URL=postgres://... python -m bench.flat --scale 1m --rebuild

The database, ``<name>_bench_<scale>`` next to DATABASE_URL's, is built once,
set-based (``INSERT ... SELECT generate_series``; bench.roster's seeding), and
kept: a marker table in it records what it holds, and a later run whose marker
matches only migrates it and measures (``--rebuild`` builds it again). It holds
SIZE users, a big course with SIZE enrollments and SIZE allowances, a small
course of about 1,000 with its team (``bench.api_list.seed_personas``), and
CODES codes in batches of 500 for the big course. Enrollments written by SQL
are counted by the counters' triggers; the build checks the counters against a
fresh count (``enrollment_counts_check``) and stops on any drift.

Each row is measured once, by the module that owns it, on this database:
``flat_rows(context)`` of

- ``bench.api_list``: the enrollment list API per persona and filter, and the
  cursor walk, against the same page by hand-written indexed SQL (best of
  ``--runs``);
- ``bench.counters``: the Course info page and self-enrollment into a capped
  course, big course against the small one, each with what the same counts
  cost by COUNT, as before the counters (best of its BENCH_COUNTERS_REPEAT, 7);
- ``bench.reports``: each report against the bare ``COPY`` of its query, each
  in a fresh process (medians of ``--runs``);
- ``bench.email``: the outbox delivering to a local SMTP sink against a bare
  ``smtplib`` loop (10,000 messages; 100,000 at 1m);

and here, the Codes tab's last page (page 1,000 of 50,000 codes) against its
first (median of ``--runs``). The figure and its baseline take turns, so that
both meet the same load from the rest of the machine: compare ratios, never
absolute times. Figures are printed, never asserted (the tests pin query
counts at two sizes instead)."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import time
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
CODE_BATCH = 500
CODES_PAGE = 50
# Raise when the seeding changes, so that databases built by an older version are rebuilt.
SEED_VERSION = 3


@dataclass
class Row:
    """One line of the table: the figure here and its baseline, in seconds (a median or the best of the runs, as the module that measures it says)."""

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
    """The courses, people, allowances and codes the rows measure, set-based;
    then the counters checked against a fresh count."""
    from django.db import connection

    from bench.api_list import seed_personas
    from bench.reports import seed_allowances
    from bench.roster import _seed as seed_learners
    from enrollments.services import enrollment_counts_check

    big = bench_course("BIG")
    seed_learners(big.pk, size)  # learner1..learnerN, each enrolled in the big course
    seed_personas(big)  # the small course of 1,000 of them, its team and the platform admin
    seed_allowances(big.pk, size)  # the may_enroll report's rows
    with connection.cursor() as cur:
        # Codes for the big course, in batches of 500 as the product generates them.
        cur.execute(
            """
            INSERT INTO codes_codebatch (created, count, prefix, max_uses, may_exceed_cap)
            SELECT now() - (b * interval '1 minute'), %s, 'BENCH', 1, false FROM generate_series(%s, 1, -1) AS b
            """,
            [CODE_BATCH, -(-codes // CODE_BATCH)],
        )
        cur.execute(
            "INSERT INTO codes_codebatch_courses (codebatch_id, course_id, created) SELECT id, %s, created FROM codes_codebatch", [big.pk],
        )
        cur.execute(
            """
            INSERT INTO codes_enrollmentcode (code, normalized, batch_id, max_uses, uses, created)
            SELECT 'BENCH-' || lpad(n::text, 12, '0'), 'BENCH' || lpad(n::text, 12, '0'),
                   (SELECT min(id) FROM codes_codebatch) + (n - 1) / %s, 1, (n %% 3 = 0)::int, now()
            FROM generate_series(1, %s) AS n
            """,
            [CODE_BATCH, codes],
        )
        cur.execute("ANALYZE")
    drift = enrollment_counts_check()
    if drift:
        raise SystemExit(f"the seeded database's counters drift from a fresh count: {drift.summary()}")


def context(scale: str, runs: int) -> Context:
    from django.contrib.auth import get_user_model

    from courses.models import Course

    User = get_user_model()
    users = User.objects.in_bulk(["bench-platform-admin", "bench-admin-of-both"], field_name="username")
    return Context(
        scale=scale, size=SCALES[scale], runs=runs,
        big=Course.objects.get(key="course-v1:Bench+BIG+2026"), small=Course.objects.get(key="course-v1:Bench+SMALL+2026"),
        platform_admin=users["bench-platform-admin"], course_admin=users["bench-admin-of-both"], codes=CODES[scale],
    )


# --- the Codes tab ------------------------------------------------------------------------------------


def _page(ctx: Context, user, url: str) -> Callable[[], object]:
    client = ctx.client(user)

    def get():
        response = client.get(url)
        if response.status_code != 200:
            raise SystemExit(f"GET {url} as {user.username}: {response.status_code}")
        return response

    return get


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
    ("enrollment list API", lambda ctx: hook_rows("bench.api_list", ctx)),
    ("Course info page and self-enrollment", lambda ctx: hook_rows("bench.counters", ctx)),
    ("Codes tab", lambda ctx: [codes_row(ctx)]),
    ("reports", lambda ctx: hook_rows("bench.reports", ctx)),
    ("email", lambda ctx: hook_rows("bench.email", ctx)),
]


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
          f"one of {ctx.small.enrollments.count():,}, {ctx.codes:,} codes; {args.runs} runs, each against its baseline in the same run\n")
    print("| what | here | baseline in the same run | ratio | SQL statements (here / baseline) | note |")
    print("|---|---|---|---|---|---|")
    skipped = []
    for section, measure in SECTIONS:
        if args.only and section not in args.only:
            continue
        rows = measure(ctx)
        if isinstance(rows, str):
            skipped.append(f"{section}: {rows}")
            continue
        for row in rows:
            print(f"| {row.what} | {_ms(row.here)} | {row.baseline_what}: {_ms(row.baseline)} | {row.ratio:.1f}x | {row.queries} | {row.note} |", flush=True)
    for line in skipped:
        print(f"\nnot measured: {line}")


if __name__ == "__main__":
    main()
