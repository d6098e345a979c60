"""Reports benchmark: time and peak memory of producing a report, on PostgreSQL.

    DATABASE_URL=postgres://... python -m bench.reports

Creates (and drops first) its own database, ``<name>_bench_reports``, with one
course of 1,000 and one of 200,000 allowances and enrollments (bulk inserts),
then produces the ``may_enroll`` and ``enrolled_profiles`` reports of each in a
fresh worker-like process (``report_run``, the function the Celery task calls),
so that the process's maximum RSS belongs to that one report. Each case runs
twice: once plain for the time and the RSS, once under tracemalloc for the peak
of Python allocations (tracemalloc slows the run down). Memory must stay flat
as rows grow; figures are printed, never asserted.
The rows are created in a child process too, so that this parent stays small:
Linux carries a parent's maximum RSS over into the processes it starts, and
each child reports its own peak (VmHWM) besides ``ru_maxrss``.
Knobs: BENCH_REPORT_SIZES (default "1000,20000,200000"; 20,000 shows that
past one chunk of 2,000 rows the peak no longer moves)."""

import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enrollment_site.settings")

from bench.common import fresh_database  # noqa: E402

SIZES = [int(n) for n in os.environ.get("BENCH_REPORT_SIZES", "1000,20000,200000").split(",")]
KINDS = ("may_enroll", "enrolled_profiles")
BATCH = 10_000


def _setup_database() -> str:
    return fresh_database("bench_reports")


def _populate(size: int, users: list[int]):
    """A course with ``size`` active enrollments and ``size`` unused allowances."""
    from courses.models import Course
    from enrollments.models import Allowance, Enrollment

    course = Course.objects.create(key=f"course-v1:Bench+R{size}+2026", display_name=f"Bench reports {size}", modes="audit,verified")
    for start in range(0, size, BATCH):
        stop = min(size, start + BATCH)
        Enrollment.objects.bulk_create(
            [Enrollment(user_id=users[i], course=course, mode="verified" if i % 3 else "audit", source="batch") for i in range(start, stop)]
        )
        # bulk_create skips Allowance.save(), which derives email_key.
        Allowance.objects.bulk_create(
            [
                Allowance(course=course, email=f"invitee{i}@Example.org", email_key=f"invitee{i}@example.org", auto_enroll=bool(i % 2))
                for i in range(start, stop)
            ]
        )
    return course


def _make_users(count: int) -> list[int]:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    User = get_user_model()
    password = make_password("bench")
    for start in range(0, count, BATCH):
        User.objects.bulk_create(
            [
                User(username=f"reportuser{i}", email=f"reportuser{i}@example.com", first_name="Bench", last_name=f"Learner {i}", password=password)
                for i in range(start, min(count, start + BATCH))
            ]
        )
    return list(User.objects.filter(username__startswith="reportuser").order_by("id").values_list("id", flat=True))


def _vmhwm_kb() -> int:
    """Peak resident set of this process's own address space (Linux), in kB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def _measure_in_child(task_id: int, *, trace: bool) -> dict:
    """Run one report in a fresh process and return its figures."""
    command = [sys.executable, "-m", "bench.reports", "--run", str(task_id)] + (["--trace"] if trace else [])
    out = subprocess.run(command, env=os.environ.copy(), capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.exit(f"report run failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def child(task_id: int, trace: bool) -> None:
    """In the child process: produce one report and print its figures as JSON."""
    import resource
    import tracemalloc

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    # A production worker runs with DEBUG off; with it on, Django keeps a log of queries.
    settings.DEBUG = False
    from reports.models import ReportTask
    from reports.services import report_run

    connection.ensure_connection()
    rss_before, hwm_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, _vmhwm_kb()
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    task = report_run(task_id=task_id)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] if trace else 0
    if trace:
        tracemalloc.stop()
    rss_after, hwm_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, _vmhwm_kb()
    task = ReportTask.objects.get(pk=task_id)
    print(json.dumps({
        "state": task.status, "rows": task.done, "seconds": seconds, "peak": peak,
        "rss_before_kb": rss_before, "rss_kb": rss_after, "hwm_before_kb": hwm_before, "hwm_kb": hwm_after,
        "bytes": task.file.size if task.file else 0,
    }))  # fmt: skip


def main():
    name = _setup_database()
    media = tempfile.mkdtemp(prefix="bench-reports-media-")
    os.environ["MEDIA_ROOT"] = media
    from django.conf import settings

    settings.MEDIA_ROOT = media

    from reports.models import ReportTask

    print(f"Reports benchmark on PostgreSQL (database {name}); files under {media}")
    from courses.models import Course

    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bench.reports", "--populate"], env=os.environ.copy(), check=True)
    courses = {size: Course.objects.get(key=f"course-v1:Bench+R{size}+2026") for size in SIZES}
    print(f"created {max(SIZES):,} users and {sum(SIZES):,} enrollments and allowances in {time.perf_counter() - started:.1f} s (bulk inserts)\n")

    print(f"{'report':<18} {'rows':>8} {'seconds':>8} {'rows/s':>9} {'file MB':>8} {'py peak MB':>11} {'ru_maxrss MB':>13} {'VmHWM MB':>9} {'growth in run MB':>17}")
    results = {}
    for kind in KINDS:
        for size in SIZES:
            plain = ReportTask.objects.create(course=courses[size], kind=kind)
            timed = _measure_in_child(plain.pk, trace=False)
            ReportTask.objects.filter(pk=plain.pk).update(status="failed")  # free the (course, kind) slot for the traced run
            traced_task = ReportTask.objects.create(course=courses[size], kind=kind)
            traced = _measure_in_child(traced_task.pk, trace=True)
            assert timed["state"] == traced["state"] == "succeeded" and timed["rows"] == size
            results[kind, size] = (timed, traced)
            print(
                f"{kind:<18} {size:>8,} {timed['seconds']:>8.2f} {size / timed['seconds']:>9,.0f} {timed['bytes'] / 1e6:>8.1f} "
                f"{traced['peak'] / 1e6:>11.2f} {timed['rss_kb'] / 1024:>13.1f} {timed['hwm_kb'] / 1024:>9.1f} {(timed['hwm_kb'] - timed['hwm_before_kb']) / 1024:>17.1f}"
            )
    sizes = sorted(SIZES)
    big = sizes[-1]
    for small in sizes[:-1]:
        print(f"\nas rows grow x{big // small:,} ({small:,} -> {big:,}):")
        for kind in KINDS:
            (t_small, p_small), (t_big, p_big) = results[kind, small], results[kind, big]
            print(
                f"  {kind:<18} python peak x{p_big['peak'] / p_small['peak']:.2f}, peak RSS (VmHWM) x{t_big['hwm_kb'] / t_small['hwm_kb']:.2f}, "
                f"time x{t_big['seconds'] / t_small['seconds']:.0f}"
            )


def populate() -> None:
    import django

    django.setup()
    users = _make_users(max(SIZES))
    for size in SIZES:
        _populate(size, users)


if __name__ == "__main__":
    if "--populate" in sys.argv:
        populate()
    elif "--run" in sys.argv:
        child(int(sys.argv[sys.argv.index("--run") + 1]), trace="--trace" in sys.argv)
    else:
        main()
