"""Counters benchmark: what the enrollment counters (``enrollments/counters.py``)
buy and cost, on PostgreSQL.

    DATABASE_URL=postgres://... python -m bench.counters

Creates (and drops first) its own database, ``<name>_bench_counters``, seeds
one course of BENCH_COUNTERS_BIG enrollments (1,000,000 by default, with
``bench.roster``'s set-based seeding) and one of BENCH_COUNTERS_SMALL (1,000),
then prints, each against a baseline measured in the same run:

- the Course info page (counts and chart, all time) on the big course against
  the small one (flat = ratio ~1), and beside it the queries the page ran
  before the counters (the per-mode and per-day COUNTs) at both sizes;
- a self-enrollment into a capped course (the view, the cap checked under the
  course lock), big against small, and beside it the COUNT it ran before;
- the 10,000-identifier batch (half users, half new emails; ``bench.__main__``'s
  service and its hand-written SQL baseline) with the triggers and with them
  dropped: what the triggers add, as a ratio of each to the SQL of the same run.

BENCH_COUNTERS_REUSE=1 measures again on the database a previous run seeded
(same sizes): seeding a million rows takes minutes. Figures are the best of
BENCH_COUNTERS_REPEAT runs after a warm-up, the compared cases taking turns so
that both meet the same load; they are printed, never asserted (tests pin the
query counts at two sizes instead). ``measure_course_info``,
``measure_capped_self_enroll`` and ``measure_trigger_cost`` return their rows;
``bench.flat`` takes the first two through :func:`flat_rows`."""

import os
import re
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enrollment_site.settings")

from bench.common import Measure, bench_course, fresh_database  # noqa: E402

BIG = int(os.environ.get("BENCH_COUNTERS_BIG", "1000000"))
SMALL = int(os.environ.get("BENCH_COUNTERS_SMALL", "1000"))
REPEAT = int(os.environ.get("BENCH_COUNTERS_REPEAT", "7"))
BATCH = int(os.environ.get("BENCH_COUNTERS_BATCH", "10000"))
REUSE = os.environ.get("BENCH_COUNTERS_REUSE") == "1"
SUFFIX = "bench_counters"


def best_in_turns(runs: dict, repeat: int = REPEAT) -> dict:
    """The best seconds (and its query count) of each named run, the runs taking
    turns ``repeat`` times after one warm-up each."""
    for run in runs.values():
        run()
    best: dict = {}
    for _ in range(repeat):
        for key, run in runs.items():
            with Measure() as m:
                run()
            if key not in best or m.seconds < best[key][0]:
                best[key] = (m.seconds, m.queries)
    return best


# --- the database ------------------------------------------------------------------------

def setup(reuse: bool = REUSE):
    """The benchmark database with a big and a small course; returns (big, small)."""
    from bench.roster import _reuse_database, _seed

    if reuse:
        _reuse_database(SUFFIX)
    else:
        fresh_database(SUFFIX, memory_broker=True)
    from django.conf import settings
    from django.db import connection

    from enrollment_site.celery import app

    # The request path is measured, not email delivery: tasks go to an in-memory broker.
    app.conf.update(task_always_eager=False, broker_url="memory://")
    settings.CELERY_TASK_ALWAYS_EAGER = False

    from courses.models import Course

    if reuse:
        return Course.objects.get(key="course-v1:Bench+COUNTERSBIG+2026"), Course.objects.get(key="course-v1:Bench+COUNTERSSMALL+2026")
    big, small = bench_course("COUNTERSBIG"), bench_course("COUNTERSSMALL")
    started = time.perf_counter()
    _seed(big.pk, BIG)  # BIG users 'learner<n>', each enrolled in the big course, one a minute
    with connection.cursor() as cur:
        # Every n-th of the big course's learners, so that both courses span the same days
        # (the chart draws a point per day with enrollments: its size follows the days, not the people).
        cur.execute(
            """
            INSERT INTO enrollments_enrollment (user_id, course_id, is_active, mode, source, created, updated)
            SELECT user_id, %s, is_active, mode, source, created, updated FROM enrollments_enrollment
            WHERE course_id = %s AND user_id %% %s = 0 ORDER BY id LIMIT %s
            """,
            [small.pk, big.pk, max(BIG // SMALL, 1), SMALL],
        )
        cur.execute("ANALYZE")
    print(f"  seeded {BIG:,} + {SMALL:,} enrollments in {time.perf_counter() - started:.1f} s")
    return big, small


def _client_for(user):
    from django.conf import settings
    from django.test import Client

    if "testserver" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    client = Client()
    client.force_login(user)
    return client


def _admin_of(course):
    from django.contrib.auth import get_user_model

    from courses.models import CourseRole

    user, _ = get_user_model().objects.get_or_create(username=f"benchadmin{course.pk}", defaults={"email": f"benchadmin{course.pk}@example.com"})
    CourseRole.objects.get_or_create(course=course, user=user, defaults={"role": CourseRole.Role.ADMIN})
    return user


# --- what the pages counted before the counters ------------------------------------------------

def _counting_course_info(course):
    """The Course info page's queries before the counters: active per mode, and the chart's per-day COUNT."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT mode, count(*) FROM enrollments_enrollment WHERE course_id = %s AND is_active GROUP BY mode", [course.pk])
        cur.fetchall()
        cur.execute(
            "SELECT (created AT TIME ZONE 'UTC')::date AS day, count(*), count(*) FILTER (WHERE is_active)"
            " FROM enrollments_enrollment WHERE course_id = %s GROUP BY 1 ORDER BY 1",
            [course.pk],
        )
        cur.fetchall()


def _counting_cap(course):
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM enrollments_enrollment WHERE course_id = %s AND is_active", [course.pk])
        cur.fetchone()


# --- the measurements ---------------------------------------------------------------------------

def measure_course_info(big, small) -> list[tuple]:
    """Rows (what, big ms, small ms, ratio, queries big, queries small)."""
    from django.urls import reverse

    clients = {c.pk: _client_for(_admin_of(c)) for c in (big, small)}

    def page(course):
        def get():
            response = clients[course.pk].get(reverse("instructor_info", args=[course.key]) + "?range=all")
            assert response.status_code == 200, response.status_code
        return get

    best = best_in_turns({"big": page(big), "small": page(small), "big_before": lambda: _counting_course_info(big),
                          "small_before": lambda: _counting_course_info(small)})
    return [
        ("Course info page (counts and chart, all time)", *_pair(best, "big", "small")),
        ("  its counts and chart by COUNT, as before the counters", *_pair(best, "big_before", "small_before")),
    ]


def measure_capped_self_enroll(big, small) -> list[tuple]:
    """A learner enrolling themself into a capped course (the view), big against small.
    Each run enrolls a new learner; the courses' caps leave room for all of them."""
    from django.contrib.auth import get_user_model
    from django.urls import reverse

    from courses.models import Course

    User = get_user_model()
    runs_each = REPEAT + 1
    clients: dict[int, list] = {}
    for course in (big, small):
        active = course.enrollments.filter(is_active=True).count()
        Course.objects.filter(pk=course.pk).update(self_enrollment=True, max_enrollments=active + runs_each + 10)
        learners = User.objects.bulk_create([
            User(username=f"selfbench{course.pk}_{i}_{time.time_ns()}", email=f"selfbench{course.pk}_{i}_{time.time_ns()}@example.com", password="!")
            for i in range(runs_each)
        ])
        clients[course.pk] = [_client_for(u) for u in learners]

    def enroll(course):
        url = reverse("self_enroll", args=[course.key])

        def post():
            response = clients[course.pk].pop().post(url)
            assert response.status_code == 302, response.status_code
        return post

    best = best_in_turns({"big": enroll(big), "small": enroll(small), "big_before": lambda: _counting_cap(big),
                          "small_before": lambda: _counting_cap(small)})
    return [
        ("self-enrollment into a capped course (the view)", *_pair(best, "big", "small")),
        ("  its cap check by COUNT, as before the counters", *_pair(best, "big_before", "small_before")),
    ]


def measure_trigger_cost(size: int = BATCH) -> list[tuple]:
    """The batch of ``size`` identifiers (half users, half new emails) and its
    SQL baseline, with the counters' triggers and without them: rows (what,
    seconds, queries). The triggers are re-installed and the counters recounted after."""
    from django.conf import settings
    from django.db import connection

    from bench.__main__ import service_run, sql_run
    from enrollments import counters
    from enrollments.services import enrollment_counts_check

    half = size // 2
    usernames = [f"learner{i}" for i in range(1, half + 1)]
    emails = [f"countersnew{i}@example.org" for i in range(half)]
    courses = iter(range(10_000))
    stamp = time.time_ns()

    def fresh():
        return bench_course(f"TRIG{stamp}x{next(courses)}")

    # The statements that write enrollments (the only ones the triggers run in), timed
    # apart: on a shared machine the whole batch's noise can hide what they add.
    writes = re.compile(r'(INSERT INTO|UPDATE)\s+"?enrollments_enrollment"?[\s(]')
    spent = [0.0]

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            if writes.search(sql):
                spent[0] += time.perf_counter() - started

    def both():
        times = {}
        for key, run in (("service", lambda c: service_run(c, usernames + emails, "enroll")), ("sql", lambda c: sql_run(c, usernames, emails, "enroll"))):
            course = fresh()
            spent[0] = 0.0
            with connection.execute_wrapper(timed):
                m = run(course)
            times[key] = (m.seconds, m.queries)
            times[f"{key}: its enrollment writes"] = (spent[0], 1)
        return times

    results: dict[str, dict] = {}
    service_run(fresh(), usernames[:10] + emails[:10], "enroll")  # warm-up
    try:
        for _ in range(max(3, REPEAT // 2)):
            for state in ("with", "without"):
                counters.run(counters.install_sql(connection.vendor, settings.TIME_ZONE) if state == "with" else counters.uninstall_sql(connection.vendor))
                for key, (seconds, queries) in both().items():
                    name = f"{key} {state}"
                    if name not in results or seconds < results[name]["seconds"]:
                        results[name] = {"seconds": seconds, "queries": queries}
    finally:
        counters.run(counters.install_sql(connection.vendor, settings.TIME_ZONE))
        enrollment_counts_check(fix=True)
    return [(name, r["seconds"], r["queries"]) for name, r in results.items()]


def flat_rows(ctx) -> list[dict]:
    """The Course info and self-enrollment rows of ``bench.flat``'s table, on its
    database: :func:`measure_course_info` and :func:`measure_capped_self_enroll`
    on its big course against its small one (best of REPEAT), each followed by
    what the same counts cost by COUNT, as before the counters."""
    small = ctx.small.enrollments.count()
    rows = measure_course_info(ctx.big, ctx.small) + measure_capped_self_enroll(ctx.big, ctx.small)
    return [
        {"what": label.strip() + ("" if label.startswith(" ") else f", {ctx.size:,} enrollments"), "here": big / 1000,
         "baseline_what": f"the same on a course of {small:,}", "baseline": small_ms / 1000, "queries": f"{bq} / {sq}"}
        for label, big, small_ms, _ratio, bq, sq in rows
    ]


def _pair(best, big, small):
    (b, bq), (s, sq) = best[big], best[small]
    return b * 1000, s * 1000, b / s, bq, sq


def main():
    big, small = setup()
    print(f"Counters benchmark on PostgreSQL: a course of {BIG:,} enrollments against one of {SMALL:,}; best of {REPEAT}")
    print(f"\n  {'what':<58} {'big':>10} {'small':>10} {'ratio':>7} {'queries':>9}")
    for label, b, s, ratio, bq, sq in measure_course_info(big, small) + measure_capped_self_enroll(big, small):
        print(f"  {label:<58} {b:7.1f} ms {s:7.1f} ms {ratio:6.2f}x {bq:>4}/{sq:<4}")
    print("  goal: ratio ~1 (flat): the same cost on a course of any size")

    print(f"\n  the {BATCH:,}-identifier batch (enroll; half users, half new emails), best of each:")
    rows = dict((name, (seconds, queries)) for name, seconds, queries in measure_trigger_cost())
    for name, (seconds, queries) in rows.items():
        print(f"  {name:<58} {seconds:8.3f} s  {queries:>5} queries")
    sw, so = rows["service with"][0], rows["service without"][0]
    qw, qo = rows["sql with"][0], rows["sql without"][0]
    print(f"  service / SQL: {sw / qw:5.2f}x with the triggers, {so / qo:5.2f}x without them")
    print(f"  the triggers add {100 * (sw / so - 1):+.0f}% to the service and {100 * (qw / qo - 1):+.0f}% to the SQL")
    ew, eo = rows["service: its enrollment writes with"][0], rows["service: its enrollment writes without"][0]
    print(f"  the statements they run in (the enrollment writes): {ew * 1000:.0f} ms with, {eo * 1000:.0f} ms without: "
          f"{(ew - eo) * 1000:+.0f} ms, {100 * (ew - eo) / so:+.1f}% of the service without them")


if __name__ == "__main__":
    main()
