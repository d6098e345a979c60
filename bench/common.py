"""What every benchmark shares: its own fresh database, a query-counting timer
and a course to work on."""

import os
import sys
import time


def fresh_database(suffix: str, *, memory_broker: bool = False) -> str:
    """Drop and create ``<DATABASE_URL's name>_<suffix>``, point DATABASE_URL at
    it, set Django up and migrate. Returns the database name.

    With ``memory_broker`` tasks are published to an in-memory broker: the
    request path is measured, not delivery."""
    import environ
    import psycopg

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("The benchmark runs on PostgreSQL: set DATABASE_URL=postgres://user:pass@host:5432/name")
    config = environ.Env.db_url_config(url)
    name = f"{config['NAME']}_{suffix}"
    admin = psycopg.connect(
        host=config["HOST"], port=config["PORT"] or 5432, user=config["USER"], password=config["PASSWORD"], dbname="postgres", autocommit=True
    )
    admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    os.environ["DATABASE_URL"] = url.rsplit("/", 1)[0] + "/" + name
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if memory_broker:
        from django.conf import settings

        from enrollment_site.celery import app

        app.conf.update(task_always_eager=False, broker_url="memory://")
        settings.CELERY_TASK_ALWAYS_EAGER = False
    return name


class Measure:
    """``with Measure() as m:`` gives ``m.seconds`` and ``m.queries`` (every SQL statement counted)."""

    def __init__(self):
        from django.db import connection

        self.connection = connection

    def _count(self, execute, sql, params, many, context):
        self.queries += 1
        return execute(sql, params, many, context)

    def __enter__(self):
        self.queries = 0
        self.wrapper = self.connection.execute_wrapper(self._count)
        self.wrapper.__enter__()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.started
        self.wrapper.__exit__(*exc)


def bench_course(key: str):
    from courses.models import Course

    return Course.objects.create(key=f"course-v1:Bench+{key}+2026", display_name=f"Bench {key}", modes="audit,verified")


# The tables a batch, a rule or an import writes, and those they read by.
WRITTEN_TABLES = ("accounts_user", "enrollments_enrollment", "enrollments_allowance", "enrollments_enrollmentaudit",
                  "enrollments_notification", "organisations_placement", "organisations_enrollmentorigin",
                  "organisations_enrollmentoriginchange")


def settle(tables=WRITTEN_TABLES) -> None:
    """Leave autovacuum nothing to do on ``tables`` before a timed method.

    Each method adds tens of thousands of rows, which sets autovacuum off on
    the tables it wrote; on two cores it then ran beside the next method timed
    (one run's rule rounds took 4.6, 7.1 and 8.3 s, the floor's 3.9 to 4.2 s).
    Vacuumed and analyzed before every method, each starts from the same
    state with fresh planner statistics, as autovacuum keeps them on a live
    database (without them the batch floor's joins were planned for one row
    where there were 5,000: nested loops, up to 20 s a statement)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {', '.join(tables)}")  # noqa: S608 (constants)
