"""The roster and its API with enrollment periods: the status filter (current,
upcoming, expired, unenrolled, as ``periods.status`` says it), the Access
column, and the period in the exports."""

import csv
import datetime as dt
import io

import pytest
from django.urls import reverse
from django.utils import timezone

from enrollments.selectors.roster import RosterQuery, roster_count, roster_page

from ..factories import EnrollmentFactory, UserFactory
from .test_roster_views import api, api_url

pytestmark = pytest.mark.django_db

DAY = dt.timedelta(days=1)


@pytest.fixture
def periods(course):
    now = timezone.now()
    make = lambda name, **kw: EnrollmentFactory(course=course, user=UserFactory(username=name), **kw)  # noqa: E731
    return {
        "open": make("open"),
        "bounded": make("bounded", access_from=now - 10 * DAY, access_until=now + 20 * DAY),
        "soon": make("soon", access_from=now + 5 * DAY, access_until=now + 35 * DAY),
        # ended but not yet ended by the expiry task: expired all the same
        "lapsed": make("lapsed", access_until=now - DAY),
        "expired": make("expired", is_active=False, access_until=now - 2 * DAY),
        "left": make("left", is_active=False),
        # left before a period that had not ended: unenrolled, not expired
        "left_early": make("left_early", is_active=False, access_until=now + 9 * DAY),
    }


@pytest.mark.parametrize(("status", "names"), [
    ("active", ["bounded", "open"]),
    ("upcoming", ["soon"]),
    ("expired", ["expired", "lapsed"]),
    ("unenrolled", ["left", "left_early"]),
])
def test_the_status_filter_matches_the_status_of_each_row(course, periods, status, names):
    query = RosterQuery(status=status, sort="username")
    page = roster_page(course=course, query=query)
    assert [row.user.username for row in page.rows] == names
    assert {row.status for row in page.rows} == {status}
    assert page.total == roster_count(course=course, query=query) == len(names)


def test_the_page_shows_the_status_and_the_access_period(client_for, course, course_admin, periods):
    html = client_for(course_admin).get(reverse("instructor_learners", args=[course.key]), {"q": "soon"}).content.decode()
    soon = periods["soon"]
    start, end = timezone.localtime(soon.access_from), timezone.localtime(soon.access_until)
    assert f'{start:%-d %b %Y}</time> – <time datetime="{end.isoformat()}"' in html
    assert ">upcoming</span>" in html
    html = client_for(course_admin).get(reverse("instructor_learners", args=[course.key]), {"q": "open"}).content.decode()
    assert "no end" in html and ">active</span>" in html
    html = client_for(course_admin).get(reverse("instructor_learners", args=[course.key]), {"status": "expired"}).content.decode()
    assert "<strong>2 learners</strong> match" in html and ">expired</span>" in html and ">active</span>" not in html


def test_an_unknown_status_is_named_and_shows_nothing(client_for, course, course_admin, periods):
    response = client_for(course_admin).get(reverse("instructor_learners", args=[course.key]), {"status": "current"})
    assert response.status_code == 400
    assert "Unknown status “current”: choose from active, upcoming, expired, unenrolled." in response.content.decode()


def test_the_csv_export_has_the_period_and_its_status(client_for, course, course_admin, periods):
    response = client_for(course_admin).get(reverse("learners_export_csv", args=[course.key]), {"sort": "username"})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    by_name = {row["username"]: row for row in rows}
    assert by_name["open"]["access_from"] == by_name["open"]["access_until"] == ""
    assert by_name["lapsed"]["status"] == "expired" and by_name["left_early"]["status"] == "unenrolled"
    soon = periods["soon"]
    assert by_name["soon"]["status"] == "upcoming"
    assert by_name["soon"]["access_until"] == f"{timezone.localtime(soon.access_until):%Y-%m-%d %H:%M:%S}"


def test_the_api_filters_by_status_and_gives_the_period(course, course_admin, periods):
    body = api(course_admin).get(api_url(course), {"status": "upcoming"}).json()
    assert body["count"] == 1
    row = body["results"][0]
    assert (row["username"], row["status"]) == ("soon", "upcoming")
    assert dt.datetime.fromisoformat(row["access_until"]) == periods["soon"].access_until
    body = api(course_admin).get(api_url(course), {"status": "expired", "sort": "username"}).json()
    assert [(r["username"], r["status"]) for r in body["results"]] == [("expired", "expired"), ("lapsed", "expired")]
    assert api(course_admin).get(api_url(course), {"status": "inactive"}).status_code == 400
