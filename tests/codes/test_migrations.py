"""The expiry migration: instants the generate form stored (the next day at
00:00 UTC) become the day the course team chose."""

import datetime
import importlib

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

migration = importlib.import_module("codes.migrations.0002_expires_on_date")

UTC = datetime.UTC
AMSTERDAM = datetime.timezone(datetime.timedelta(hours=1))


@pytest.mark.parametrize(
    ("stored", "site_tz", "day"),
    [
        # what the form wrote for 31 Dec 2026, in any site time zone
        (datetime.datetime(2027, 1, 1, tzinfo=UTC), UTC, datetime.date(2026, 12, 31)),
        (datetime.datetime(2027, 1, 1, tzinfo=UTC), AMSTERDAM, datetime.date(2026, 12, 31)),
        # a script's instant: the site-time-zone day of the last instant the code worked
        (datetime.datetime(2026, 6, 15, 13, 30, tzinfo=UTC), UTC, datetime.date(2026, 6, 15)),
        (datetime.datetime(2026, 6, 15, 23, 30, tzinfo=UTC), AMSTERDAM, datetime.date(2026, 6, 16)),
    ],
)
def test_stored_instant_becomes_the_chosen_day(stored, site_tz, day):
    assert migration.expiry_day(stored, site_tz) == day


@pytest.mark.one_database
@pytest.mark.django_db(transaction=True)
def test_migration_converts_existing_rows():
    executor = MigrationExecutor(connection)
    executor.migrate([("codes", "0001_initial")])
    apps = executor.loader.project_state([("codes", "0001_initial")]).apps
    CodeBatch, EnrollmentCode = apps.get_model("codes", "CodeBatch"), apps.get_model("codes", "EnrollmentCode")
    end_of_2026 = datetime.datetime(2027, 1, 1, tzinfo=UTC)
    batch = CodeBatch.objects.create(count=2, expires_at=end_of_2026)
    EnrollmentCode.objects.create(code="OLD-A", normalized="OLDA", batch=batch, expires_at=end_of_2026)
    EnrollmentCode.objects.create(code="OLD-B", normalized="OLDB", batch=batch, expires_at=None)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    from codes.models import CodeBatch as Batch
    from codes.models import EnrollmentCode as Code

    assert Batch.objects.get(pk=batch.pk).expires_on == datetime.date(2026, 12, 31)
    assert dict(Code.objects.values_list("code", "expires_on")) == {"OLD-A": datetime.date(2026, 12, 31), "OLD-B": None}
