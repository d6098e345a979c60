"""Browser journey: the instructor reads the Course info chart on a time axis and
switches its period."""

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from courses.models import CourseRole
from enrollments.models import Enrollment
from tests.e2e.browser import log_in
from tests.e2e.test_journeys import shot
from tests.factories import CourseFactory, CourseRoleFactory, EnrollmentFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CHART = "Chart.getChart(document.getElementById('enrollment-chart'))"


def test_instructor_sees_the_chart_on_a_time_axis_and_switches_its_period(page: Page, live_server):
    course = CourseFactory(key="course-v1:Acme+ENR101+2026", display_name="Enrollment 101")
    CourseRoleFactory(course=course, role=CourseRole.Role.ADMIN, user=UserFactory(username="instructor"))
    today = timezone.localdate()
    for days_ago, count in ((200, 3), (45, 2), (20, 4), (19, 1), (12, 2), (2, 5)):
        at = timezone.make_aware(dt.datetime.combine(today - dt.timedelta(days=days_ago), dt.time(10)))
        EnrollmentFactory.create_batch(count, course=course, created=at)
    # Two of those from 200 days ago leave today: two ends today, the active total down to 15.
    Enrollment.objects.filter(pk__in=Enrollment.objects.filter(course=course).order_by("created", "pk").values("pk")[:2]).update(is_active=False)

    page.emulate_media(reduced_motion="reduce")  # the chart draws at once, as for people who ask for less motion
    log_in(page, live_server.url, "instructor")
    page.goto(f"{live_server.url}/courses/{course.key}/instructor/info/")
    period = page.get_by_role("navigation", name="Chart period")
    expect(period.get_by_role("link", name="All")).to_have_attribute("aria-current", "page")
    canvas = page.locator("canvas#enrollment-chart")
    expect(canvas).to_be_visible()
    page.wait_for_function(f"{CHART} !== undefined")
    assert page.evaluate(f"{CHART}.scales.x.type") == "time"
    assert page.evaluate(f"{CHART}.data.datasets.map(d => d.label)") == ["Active enrollments", "New enrollments per day", "Ended per day"]
    assert page.evaluate(f"{CHART}.data.datasets[0].data.at(-1).y") == 15
    assert page.evaluate(f"{CHART}.data.datasets[2].data") == [{"x": today.isoformat(), "y": 2}]
    expect(page.locator("#enrollment-period-totals")).to_have_text("In this period: 17 new, 2 ended.")
    assert canvas.bounding_box()["height"] > 100
    shot(page, "course-info-chart-all")

    period.get_by_role("link", name="30 days").click()
    expect(page).to_have_url(re.compile(r"\?range=30d$"))
    expect(period.get_by_role("link", name="30 days")).to_have_attribute("aria-current", "page")
    page.wait_for_function(f"{CHART} !== undefined")
    # Four days with enrollments in the last 30: two side by side, then gaps of 7 and 10 days.
    assert page.evaluate(f"{CHART}.data.datasets[1].data.length") == 4
    assert page.evaluate(f"{CHART}.data.datasets[0].data[0].y") == 3  # those enrolled before the period, still active
    shot(page, "course-info-chart-30d")

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.wait_for_function(f"{CHART} !== undefined")
    expect(period.get_by_role("link", name="1 year")).to_be_visible()
    shot(page, "course-info-chart-30d-phone")
