"""The Course info chart: data points on a time axis (gaps keep their width),
new and ended enrollments per day and the cumulative active total, for a chosen range."""

import datetime as dt
import json
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from enrollments.models import EnrollmentDayCount
from enrollments.selectors import enrollments_over_time
from enrollments.services import enrollment_self_unenroll
from tests.factories import EnrollmentFactory

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 6, 30)


def day(n: int) -> str:
    return (TODAY - dt.timedelta(days=n)).isoformat()


def enroll(course, days_ago: int, *, count=1, active=True, today=TODAY):
    at = timezone.make_aware(dt.datetime.combine(today - dt.timedelta(days=days_ago), dt.time(12)))
    for _ in range(count):
        EnrollmentFactory(course=course, created=at, is_active=active)


def test_days_with_enrollments_are_points_and_gaps_stay_gaps(course, django_assert_num_queries):
    enroll(course, 10, count=2)
    enroll(course, 3)
    enroll(course, 3, active=False)  # left since: a new enrollment that day, not active now
    enroll(course, 0)
    with django_assert_num_queries(1):
        data = enrollments_over_time(course=course, today=TODAY)
    assert data["new"] == [{"x": day(10), "y": 2}, {"x": day(3), "y": 2}, {"x": day(0), "y": 1}]
    # From nought the day before the first enrollment, to today's total.
    assert data["active"] == [{"x": day(11), "y": 0}, {"x": day(10), "y": 2}, {"x": day(3), "y": 3}, {"x": day(0), "y": 4}]
    assert (data["start"], data["end"], data["has_data"]) == (day(11), day(0), True)


def test_a_range_starts_from_the_total_before_it(course, django_assert_num_queries):
    enroll(course, 400, count=3)
    enroll(course, 40, count=2)
    enroll(course, 40, active=False)
    enroll(course, 5)
    with django_assert_num_queries(2):  # the count before the range, and the days in it
        month = enrollments_over_time(course=course, days=30, today=TODAY)
    assert month["start"] == day(29)
    assert month["new"] == [{"x": day(5), "y": 1}]
    assert month["active"] == [{"x": day(29), "y": 5}, {"x": day(5), "y": 6}, {"x": day(0), "y": 6}]

    year = enrollments_over_time(course=course, days=365, today=TODAY)
    assert year["start"] == day(364)
    assert year["new"] == [{"x": day(40), "y": 3}, {"x": day(5), "y": 1}]
    assert year["active"] == [{"x": day(364), "y": 3}, {"x": day(40), "y": 5}, {"x": day(5), "y": 6}, {"x": day(0), "y": 6}]


def test_the_number_of_queries_does_not_grow_with_the_days(course, django_assert_num_queries):
    for n in range(0, 60, 2):
        enroll(course, n)
    with django_assert_num_queries(2):
        data = enrollments_over_time(course=course, days=365, today=TODAY)
    assert len(data["new"]) == 30 and data["active"][-1] == {"x": day(0), "y": 30}


def test_nothing_to_draw(course):
    assert enrollments_over_time(course=course, today=TODAY)["has_data"] is False
    enroll(course, 100, active=False)
    assert enrollments_over_time(course=course, days=30, today=TODAY)["has_data"] is False


def chart_page(client, course, query=""):
    response = client.get(reverse("instructor_info", args=[course.key]) + query)
    assert response.status_code == 200
    html = response.content.decode()
    match = re.search(r'<script id="enrollment-timeline" type="application/json">(.*?)</script>', html)
    return response, html, json.loads(match.group(1)) if match else None


@pytest.mark.parametrize("query, chosen, start_days_ago", [("", "all", 41), ("?range=all", "all", 41), ("?range=30d", "30d", 29), ("?range=1y", "1y", 364)])
def test_the_page_charts_the_chosen_range(client_for, course, course_staff, query, chosen, start_days_ago):
    today = timezone.localdate()
    enroll(course, 40, today=today)
    enroll(course, 2, today=today)
    response, html, data = chart_page(client_for(course_staff), course, query)
    assert response.context["range"] == chosen
    assert data["start"] == (today - dt.timedelta(days=start_days_ago)).isoformat() and data["end"] == today.isoformat()
    assert re.search(rf'class="btn btn-primary" href="\?range={chosen}" aria-current="page"', html)
    assert "chartjs-adapter-date-fns.bundle.min.js" in html


@pytest.mark.parametrize("query", ["?range=7y", "?range=", "?range=30d&range=<script>", "?range=%00"])
def test_an_unknown_range_falls_back_to_all_without_an_error(client_for, course, course_staff, query):
    enroll(course, 40, today=timezone.localdate())
    response, html, data = chart_page(client_for(course_staff), course, query)
    assert response.context["range"] == "all" and data["start"] == (timezone.localdate() - dt.timedelta(days=41)).isoformat()
    assert "%3Cscript%3E" not in html  # the range links replace the bad value


def test_a_quiet_period_says_so(client_for, course, course_staff):
    enroll(course, 100, active=False, today=timezone.localdate())
    _, html, data = chart_page(client_for(course_staff), course, "?range=30d")
    assert data is None and "Nobody enrolled in this period." in html


def ends_on(course, days_ago: int, n: int, *, today=TODAY):
    """The counters' ends on a past day (the triggers count an end on the day it happens: today)."""
    EnrollmentDayCount.objects.update_or_create(course=course, day=today - dt.timedelta(days=days_ago), defaults={"ended": n})


def test_ends_are_a_series_of_their_own_by_the_day_they_happened(course, django_assert_num_queries):
    enroll(course, 40, count=3)
    enroll(course, 5)
    ends_on(course, 40, 1)  # a day with new enrollments and ends
    ends_on(course, 12, 2)  # a day with ends only: no new bar, no step in the line
    ends_on(course, 35, 0)  # a row with nothing in it is no point
    with django_assert_num_queries(2):
        data = enrollments_over_time(course=course, days=30, today=TODAY)
    assert data["ended"] == [{"x": day(12), "y": 2}]
    assert data["new"] == [{"x": day(5), "y": 1}]
    assert data["active"] == [{"x": day(29), "y": 3}, {"x": day(5), "y": 4}, {"x": day(0), "y": 4}]
    assert (data["new_total"], data["ended_total"]) == (1, 2)
    everything = enrollments_over_time(course=course, today=TODAY)
    assert everything["ended"] == [{"x": day(40), "y": 1}, {"x": day(12), "y": 2}] and everything["start"] == day(41)
    assert (everything["new_total"], everything["ended_total"]) == (4, 3)


def test_a_period_with_ends_only_still_has_a_chart(course):
    enroll(course, 100, active=False)
    ends_on(course, 3, 1)
    data = enrollments_over_time(course=course, days=30, today=TODAY)
    assert data["has_data"] is True and data["ended"] == [{"x": day(3), "y": 1}] and data["new"] == []


def test_the_page_charts_an_unenrollment_as_an_end_today(client_for, course, course_staff):
    enrollment = EnrollmentFactory(course=course)
    enrollment_self_unenroll(user=enrollment.user, course=course)
    _, html, data = chart_page(client_for(course_staff), course, "?range=30d")
    today = timezone.localdate().isoformat()
    assert data["ended"] == [{"x": today, "y": 1}] and data["new"] == [{"x": today, "y": 1}]
    assert re.search(r"In this period: <strong>1</strong> new, <strong>1</strong> ended\.", html)
