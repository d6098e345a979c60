"""Expiry dates end in the time zone chosen when generating the codes: the last
second of the day there still works, its midnight does not, whatever the site's
zone; existing codes keep the site's zone."""

import csv
import datetime
import io
import re
import zoneinfo
from types import SimpleNamespace

import pytest
import time_machine
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from codes.forms import default_time_zone
from codes.models import CodeBatch, EnrollmentCode, Status, end_of_day
from codes.services import CodeExpired, code_batch_generate, code_redeem

from ..factories import UserFactory

pytestmark = pytest.mark.django_db

TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")
DAY = datetime.date(2026, 12, 31)


def _status_in_sql(code: EnrollmentCode) -> str:
    return EnrollmentCode.objects.with_status().values_list("status_value", flat=True).get(pk=code.pk)


def _generate(actor, course, time_zone: str) -> EnrollmentCode:
    with time_machine.travel(datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC), tick=False):
        batch = code_batch_generate(actor=actor, courses=[course], count=1, expires_on=DAY, time_zone=time_zone)
    return batch.codes.get()


def test_end_of_day_is_the_next_midnight_there():
    assert end_of_day(DAY, "Asia/Tokyo") == datetime.datetime(2027, 1, 1, tzinfo=TOKYO)
    assert end_of_day(DAY, "UTC") == datetime.datetime(2027, 1, 1, tzinfo=datetime.UTC)
    # Santiago moves its clocks from 00:00 to 01:00 on 6 Sep 2026: the day ends when the clocks jump.
    assert end_of_day(datetime.date(2026, 9, 5), "America/Santiago") == datetime.datetime(2026, 9, 6, 4, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("when", "tokyo_status", "utc_status"),
    [
        # 23:59:59 in Tokyo on the expiry day (14:59:59 UTC): both work
        (datetime.datetime(2026, 12, 31, 23, 59, 59, tzinfo=TOKYO), Status.ACTIVE, Status.ACTIVE),
        # midnight in Tokyo: the Tokyo code has expired, the UTC one works for nine more hours
        (datetime.datetime(2027, 1, 1, 0, 0, 0, tzinfo=TOKYO), Status.EXPIRED, Status.ACTIVE),
        # 23:59:59 UTC on the expiry day: still only the Tokyo code is expired
        (datetime.datetime(2026, 12, 31, 23, 59, 59, tzinfo=datetime.UTC), Status.EXPIRED, Status.ACTIVE),
        # midnight UTC: both
        (datetime.datetime(2027, 1, 1, 0, 0, 0, tzinfo=datetime.UTC), Status.EXPIRED, Status.EXPIRED),
    ],
)
def test_a_code_works_to_the_end_of_its_day_in_the_chosen_zone(settings, course, course_staff, when, tokyo_status, utc_status):
    settings.TIME_ZONE = "UTC"
    tokyo, utc = _generate(course_staff, course, "Asia/Tokyo"), _generate(course_staff, course, "UTC")
    assert (tokyo.batch.time_zone, utc.batch.time_zone) == ("Asia/Tokyo", "UTC")
    with time_machine.travel(when, tick=False):
        assert tokyo.status == _status_in_sql(tokyo) == tokyo_status
        assert utc.status == _status_in_sql(utc) == utc_status
        expired = set(EnrollmentCode.objects.filter_status(Status.EXPIRED).values_list("pk", flat=True))
        active = set(EnrollmentCode.objects.filter_status(Status.ACTIVE).values_list("pk", flat=True))
    assert {c.pk for c in (tokyo, utc) if c.status_at(when) == Status.EXPIRED} == expired
    assert {c.pk for c in (tokyo, utc) if c.status_at(when) == Status.ACTIVE} == active


def test_redeeming_after_the_end_of_the_day_in_its_zone_names_day_and_zone(settings, course, course_staff, learner):
    settings.TIME_ZONE = "UTC"
    code = _generate(course_staff, course, "Asia/Tokyo")
    with time_machine.travel(datetime.datetime(2026, 12, 31, 23, 59, 59, tzinfo=TOKYO), tick=False):
        assert not code_redeem(code=code.code, user=learner).already_redeemed
    with time_machine.travel(datetime.datetime(2027, 1, 1, tzinfo=TOKYO), tick=False), pytest.raises(CodeExpired) as caught:
        code_redeem(code=code.code, user=UserFactory())
    assert str(caught.value) == "This code expired at the end of 31 Dec 2026 (Asia/Tokyo)."


def test_today_is_the_chosen_zone_s_today(settings, course, course_staff):
    settings.TIME_ZONE = "UTC"
    # 16:00 UTC on 31 Dec is already 1 Jan in Tokyo.
    with time_machine.travel(datetime.datetime(2026, 12, 31, 16, 0, tzinfo=datetime.UTC), tick=False):
        code_batch_generate(actor=course_staff, courses=[course], count=1, expires_on=DAY, time_zone="UTC")
        with pytest.raises(Exception, match="today or later") as caught:
            code_batch_generate(actor=course_staff, courses=[course], count=1, expires_on=DAY, time_zone="Asia/Tokyo")
    assert "1 Jan 2027 in Asia/Tokyo" in str(caught.value)
    assert CodeBatch.objects.count() == 1


def test_an_unknown_zone_is_refused_and_creates_nothing(course, course_staff):
    with pytest.raises(Exception, match="Choose a time zone"):
        code_batch_generate(actor=course_staff, courses=[course], count=1, expires_on=DAY, time_zone="Mars/Olympus")
    assert not CodeBatch.objects.exists()


def test_the_form_defaults_to_the_user_s_zone_else_the_site_s(settings):
    settings.TIME_ZONE = "Europe/Amsterdam"
    assert default_time_zone(SimpleNamespace(time_zone="Asia/Tokyo")) == "Asia/Tokyo"
    assert default_time_zone(SimpleNamespace(time_zone="")) == "Europe/Amsterdam"
    assert default_time_zone(SimpleNamespace()) == "Europe/Amsterdam"
    assert default_time_zone(SimpleNamespace(time_zone="Nowhere/Else")) == "Europe/Amsterdam"


def test_the_chosen_zone_is_stored_and_shown_on_the_page_and_in_the_csv(settings, client_for, course, course_staff):
    settings.TIME_ZONE = "UTC"
    client = client_for(course_staff)
    url = reverse("instructor_codes", kwargs={"course_key": course.key})
    with time_machine.travel(datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC), tick=False):
        page = client.post(
            url, {"courses": [course.pk], "count": 1, "uses_mode": "single", "expires_on": "2026-12-31", "time_zone": "Asia/Tokyo"}, follow=True,
        ).content.decode()
        export = client.get(reverse("course_codes_export", kwargs={"course_key": course.key}))
    code = EnrollmentCode.objects.select_related("batch").get()
    assert code.batch.time_zone == "Asia/Tokyo" and code.expires_at == datetime.datetime(2027, 1, 1, tzinfo=TOKYO)
    assert "working until the end of 31 Dec 2026 (Asia/Tokyo)" in page
    row = re.search(rf'<tr data-code="{code.code}">(.*?)</tr>', page, re.S).group(1)
    assert "31 Dec 2026" in row and "end of day, Asia/Tokyo" in row
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert rows[0][-1] == "expiry_time_zone" and rows[1][5] == "2026-12-31" and rows[1][-1] == "Asia/Tokyo"


def test_a_bad_zone_in_the_form_is_a_clear_error_and_creates_nothing(client_for, course, course_staff):
    url = reverse("instructor_codes", kwargs={"course_key": course.key})
    response = client_for(course_staff).post(url, {"courses": [course.pk], "count": 1, "uses_mode": "single", "time_zone": "Mars/Olympus"})
    assert response.status_code == 400
    assert "Choose a time zone from the list, such as Europe/Paris." in response.content.decode()
    assert not CodeBatch.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_existing_codes_keep_the_site_zone(settings):
    settings.TIME_ZONE = "America/New_York"
    executor = MigrationExecutor(connection)
    executor.migrate([("codes", "0005_code_batch_duration")])
    apps = executor.loader.project_state([("codes", "0005_code_batch_duration")]).apps
    Batch, Code = apps.get_model("codes", "CodeBatch"), apps.get_model("codes", "EnrollmentCode")
    batch = Batch.objects.create(count=2, expires_on=DAY)
    Code.objects.create(code="OLD-A", normalized="OLDA", batch=batch, expires_on=DAY)
    Code.objects.create(code="OLD-B", normalized="OLDB", batch=batch, expires_on=None)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert CodeBatch.objects.get(pk=batch.pk).time_zone == "America/New_York"
    new_york = zoneinfo.ZoneInfo("America/New_York")
    assert dict(EnrollmentCode.objects.values_list("code", "expires_at")) == {
        "OLD-A": datetime.datetime(2027, 1, 1, tzinfo=new_york), "OLD-B": None,
    }
