"""Reports benchmark: producing a report against the database's own
``COPY (same query) TO STDOUT`` in the same run, and its peak memory, on PostgreSQL.

    DATABASE_URL=postgres://... python -m bench.reports               # 1,000, 20,000 and 200,000 rows
    DATABASE_URL=postgres://... python -m bench.reports --scale 1m    # 1,000 and 1,000,000 rows

The small scale creates (and drops first) its own database,
``<name>_bench_reports``. ``--scale 1m`` (or ``BENCH_SCALE=1m``) keeps its
database, ``<name>_bench_reports_1m``, between runs and reuses it (seeding a
million rows takes minutes); ``--rebuild`` seeds it again. Seeding is
set-based: the users and the big course's enrollments by ``bench.roster``'s
``INSERT ... SELECT generate_series`` (one in twenty inactive), the other
courses' enrollments and every course's allowances (a few with cells a
spreadsheet would take for a formula) the same way.

For the ``may_enroll`` and ``enrolled_profiles`` reports of each course:

- time: ``report_run`` (what the Celery task calls: count, COPY with the cells
  formatted and guarded in SQL, CRLF, the file saved to storage, progress)
  against the bare ``COPY (the report's query) TO STDOUT WITH (FORMAT csv,
  HEADER)`` written to a file, each in a fresh process, taking turns
  BENCH_REPORT_REPEAT times (3); medians and the ratio of the medians;
- ``--before`` also times the row-by-row path (``safe_row`` and ``csv.writer``
  over a server-side cursor: what SQLite still uses, and PostgreSQL used
  before COPY) once, against the same baseline;
- memory, in separate runs: the peak of Python allocations under tracemalloc
  (which slows a run down, so it is never timed), and the growth of the
  process's peak resident set (VmHWM) in the plain runs.

``bench.flat`` times the two reports of its own big course through
:func:`flat_rows` (what ``make bench`` runs); this module alone adds the sizes,
the row-by-row path and memory. Figures are printed, never asserted (tests pin
what can be pinned)."""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enrollment_site.settings")

from bench.common import fresh_database  # noqa: E402

LARGE = "--scale" in sys.argv and sys.argv[sys.argv.index("--scale") + 1] == "1m" or os.environ.get("BENCH_SCALE") == "1m"
DEFAULT_SIZES = "1000,1000000" if LARGE else "1000,20000,200000"
SIZES = [int(n) for n in os.environ.get("BENCH_REPORT_SIZES", DEFAULT_SIZES).split(",")]
REPEAT = int(os.environ.get("BENCH_REPORT_REPEAT", "3"))
KINDS = ("may_enroll", "enrolled_profiles")
SUFFIX = "bench_reports_1m" if LARGE else "bench_reports"


def _course_key(size: int) -> str:
    return f"course-v1:Bench+R{size}+2026"


# --- the database -------------------------------------------------------------------


def _reuse_or_create() -> tuple[str, bool]:
    """The benchmark's database: the 1m one is reused when it is there and
    seeded (``--rebuild`` drops it); the small one is always made afresh.
    Returns its name and whether it must be seeded."""
    if not LARGE or "--rebuild" in sys.argv:
        return fresh_database(SUFFIX), True
    import environ
    import psycopg

    url = os.environ["DATABASE_URL"]
    config = environ.Env.db_url_config(url)
    name = f"{config['NAME']}_{SUFFIX}"
    admin = psycopg.connect(
        host=config["HOST"], port=config["PORT"] or 5432, user=config["USER"], password=config["PASSWORD"], dbname="postgres", autocommit=True
    )
    exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    admin.close()
    if not exists:
        return fresh_database(SUFFIX), True
    os.environ["DATABASE_URL"] = url.rsplit("/", 1)[0] + "/" + name
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)  # the code may have moved on since the seeding
    from courses.models import Course

    seeded = Course.objects.filter(key__in=[_course_key(size) for size in SIZES]).count() == len(SIZES)
    if not seeded:
        return fresh_database(SUFFIX), True
    return name, False


def _seed() -> float:
    """Users, and in each course of SIZES that many enrollments and unused
    allowances, set-based. Returns seconds."""
    from django.db import connection

    from bench.common import bench_course
    from bench.roster import _seed as seed_users_and_enrollments

    started = time.perf_counter()
    biggest = max(SIZES)
    courses = {size: bench_course(f"R{size}") for size in SIZES}
    for size, course in courses.items():
        course.display_name = f"Bench reports {size:,}"
        course.save(update_fields=["display_name"])
    # 'learner<n>' users and one enrollment each in the biggest course
    seed_users_and_enrollments(courses[biggest].pk, biggest)
    with connection.cursor() as cur:
        for size, course in courses.items():
            if size != biggest:
                cur.execute(
                    """
                    INSERT INTO enrollments_enrollment (user_id, course_id, is_active, mode, source, created, updated)
                    SELECT u.id, %s, true, CASE WHEN u.id %% 3 = 0 THEN 'verified' ELSE 'audit' END, 'batch',
                           now() - (u.id * interval '1 minute'), now() - (u.id * interval '1 minute')
                    FROM accounts_user u WHERE u.username LIKE 'learner%%' ORDER BY u.id LIMIT %s
                    """,
                    [course.pk, size],
                )
    for size, course in courses.items():
        seed_allowances(course.pk, size)
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    return time.perf_counter() - started


def seed_allowances(course_id: int, size: int) -> None:
    """``size`` unused allowances in the course, by one INSERT ... SELECT."""
    from django.db import connection

    with connection.cursor() as cur:
        # Allowances by invitation (half of them made by a team member, the
        # allowed_by column); one in a hundred emails starts with a formula trigger.
        cur.execute(
            """
            INSERT INTO enrollments_allowance (course_id, email, email_key, auto_enroll, created_by_id, created)
            SELECT %s, e, lower(e), n %% 2 = 0, CASE WHEN n %% 2 = 0 THEN (SELECT min(id) FROM accounts_user) END,
                   now() - (n * interval '1 minute')
            FROM generate_series(1, %s) AS n,
                 LATERAL (SELECT CASE WHEN n %% 100 = 0 THEN '+' ELSE '' END || 'Invitee' || n || '@Example.org' AS e) AS email
            """,
            [course_id, size],
        )


# --- one measurement, in a fresh process -----------------------------------------------


def _vmhwm_kb() -> int:
    """Peak resident set of this process's own address space (Linux), in kB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def _in_child(*args: str) -> dict:
    """Run ``python -m bench.reports <args>`` and answer the JSON it prints last."""
    out = subprocess.run([sys.executable, "-m", "bench.reports", *args], env=os.environ.copy(), capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.exit(f"bench.reports {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def child(mode: str, course_key: str, kind: str) -> None:
    """In the child process: produce one report (``report``, ``rows``,
    ``trace``) or its bare COPY (``copy``), print its figures as JSON."""
    import tracemalloc

    import django

    django.setup()
    from django.conf import settings
    from django.core.files.storage import default_storage
    from django.db import connection

    # A production worker runs with DEBUG off; with it on, Django keeps a log of queries.
    settings.DEBUG = False
    from courses.models import Course
    from reports import services
    from reports.models import ReportTask
    from reports.selectors import REPORTS

    course = Course.objects.get(key=course_key)
    connection.ensure_connection()
    hwm_before = _vmhwm_kb()
    if mode == "copy":
        sql, params = REPORTS[kind].values(course).query.sql_with_params()
        with tempfile.TemporaryFile() as out:
            started = time.perf_counter()
            with connection.connection.cursor() as cur, cur.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER)", params) as copy:
                for data in copy:
                    out.write(data)
            seconds = time.perf_counter() - started
            size = out.tell()
        print(json.dumps({"seconds": seconds, "bytes": size, "hwm_kb": _vmhwm_kb(), "hwm_before_kb": hwm_before}))
        return
    if mode == "rows":
        services.by_copy = lambda: False
    # The previous run's task is done: this one is not blocked by the one-pending-report index.
    task = ReportTask.objects.create(course=course, kind=kind)
    if mode == "trace":
        tracemalloc.start()
    started = time.perf_counter()
    services.report_run(task_id=task.pk)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] if mode == "trace" else 0
    task.refresh_from_db()
    size = task.file.size if task.file else 0
    if task.file:
        default_storage.delete(task.file.name)  # a million-row file is 100 MB
    print(json.dumps({
        "state": task.status, "rows": task.done, "seconds": seconds, "peak": peak, "bytes": size,
        "hwm_kb": _vmhwm_kb(), "hwm_before_kb": hwm_before,
    }))  # fmt: skip


def flat_rows(ctx) -> list[dict]:
    """The report rows of ``bench.flat``'s table, on its database: each report
    of its big course against the bare COPY of the same query, each in a fresh
    process, taking turns ``ctx.runs`` times; medians."""
    media = tempfile.mkdtemp(prefix="bench-reports-media-")
    os.environ["MEDIA_ROOT"] = media  # the children save their files there
    from reports.selectors import REPORTS

    rows = []
    for kind in KINDS:
        count = REPORTS[kind].queryset(ctx.big).count()
        reports, copies = [], []
        for _ in range(ctx.runs):
            reports.append(_in_child("--run", "report", ctx.big.key, kind))
            copies.append(_in_child("--run", "copy", ctx.big.key, kind))
        if not all(r["state"] == "succeeded" and r["rows"] == count for r in reports):
            sys.exit(f"the {kind} report did not produce its {count:,} rows: {reports}")
        growth = max(r["hwm_kb"] - r["hwm_before_kb"] for r in reports) / 1024
        rows.append({
            "what": f"`{kind}` report, {count:,} rows", "here": statistics.median(r["seconds"] for r in reports),
            "baseline_what": "`COPY (same query) TO STDOUT`", "baseline": statistics.median(c["seconds"] for c in copies),
            "note": f"RSS growth {growth:.1f} MB",
        })  # fmt: skip
    return rows


# --- the run -----------------------------------------------------------------------------


def main():
    name, must_seed = _reuse_or_create()
    media = tempfile.mkdtemp(prefix="bench-reports-media-")
    os.environ["MEDIA_ROOT"] = media  # the children save their files there
    from courses.models import Course
    from reports.selectors import REPORTS

    if must_seed:
        print(f"Reports benchmark on PostgreSQL (database {name}, seeded set-based in {_seed():.0f} s)")
    else:
        print(f"Reports benchmark on PostgreSQL (database {name}, seeded by an earlier run)")
    courses = {size: Course.objects.get(key=_course_key(size)) for size in SIZES}
    before = "--before" in sys.argv
    print(
        f"medians of {REPEAT} runs each, the report and its bare COPY taking turns, each in a fresh process; memory in separate runs\n\n"
        f"{'report':<18} {'rows':>10} {'report s':>9} {'COPY s':>8} {'ratio':>6} {'runs':>17} {'row-by-row s':>13} {'ratio':>6} "
        f"{'file MB':>8} {'py peak MB':>11} {'RSS growth MB':>14}"
    )
    results = {}
    for kind in KINDS:
        for size in SIZES:
            key = _course_key(size)
            rows = REPORTS[kind].queryset(courses[size]).count()
            reports, copies = [], []
            for _ in range(REPEAT):
                reports.append(_in_child("--run", "report", key, kind))
                copies.append(_in_child("--run", "copy", key, kind))
            assert all(r["state"] == "succeeded" and r["rows"] == rows for r in reports), reports
            traced = _in_child("--run", "trace", key, kind)
            ours = statistics.median(r["seconds"] for r in reports)
            bare = statistics.median(c["seconds"] for c in copies)
            ratios = sorted(r["seconds"] / c["seconds"] for r, c in zip(reports, copies, strict=True))
            old = ""
            if before:
                by_rows = _in_child("--run", "rows", key, kind)
                old = f"{by_rows['seconds']:>13.2f} {by_rows['seconds'] / bare:>5.1f}x"
            else:
                old = f"{'':>13} {'':>6}"
            growth = max(r["hwm_kb"] - r["hwm_before_kb"] for r in reports) / 1024
            results[kind, size] = (traced["peak"], growth, ours)
            print(
                f"{kind:<18} {rows:>10,} {ours:>9.2f} {bare:>8.2f} {ours / bare:>5.2f}x {'/'.join(f'{r:.2f}' for r in ratios):>17} {old} "
                f"{reports[0]['bytes'] / 1e6:>8.1f} {traced['peak'] / 1e6:>11.2f} {growth:>14.1f}"
            )
    small, big = min(SIZES), max(SIZES)
    print(f"\nas rows grow x{big // small:,} ({small:,} -> {big:,}):")
    for kind in KINDS:
        (p_small, g_small, t_small), (p_big, g_big, t_big) = results[kind, small], results[kind, big]
        print(f"  {kind:<18} python peak x{p_big / p_small:.2f}, RSS growth {g_small:.1f} -> {g_big:.1f} MB, time x{t_big / t_small:.0f}")
    print("\n  goal: every report within 2x of its bare COPY, memory flat")


if __name__ == "__main__":
    if "--run" in sys.argv:
        at = sys.argv.index("--run")
        child(*sys.argv[at + 1 : at + 4])
    else:
        main()
