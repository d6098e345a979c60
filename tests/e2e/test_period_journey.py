"""Browser journey: an instructor enrolls a list for 30 days from the Membership
tab's Access period fields; the preview and the results say so, and the learner
sees the end date on the course page. Then time passes (time-machine moves the
clock of the test and of the live server alike): the reminder arrives, the
expiry run ends the enrollment, the learner finds the course under Past
courses, and the instructor finds them expired and extends their access."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone
from playwright.sync_api import Page, expect

from courses.models import CourseRole
from enrollments.models import Enrollment
from enrollments.periods_asked import moment_shown
from enrollments.services.expiry import enrollments_expire
from enrollments.services.reminders import enrollments_remind
from tests.e2e.browser import log_in
from tests.factories import CourseFactory, CourseRoleFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def course():
    course = CourseFactory(key="course-v1:Acme+ENR101+2026", display_name="Enrollment 101")
    CourseRoleFactory(course=course, role=CourseRole.Role.ADMIN, user=UserFactory(username="instructor"))
    UserFactory(username="kim", email="kim@example.com")
    return course


def test_an_instructor_enrolls_for_30_days_and_the_learner_sees_the_end(page: Page, live_server, course):
    log_in(page, live_server.url, "instructor")
    page.goto(f"{live_server.url}/courses/{course.key}/instructor/membership/")
    page.get_by_label("Usernames or emails").fill("kim")
    days = page.get_by_label("…or days of access")
    expect(days).to_be_hidden()  # folded away until asked for
    page.get_by_text("Access period (optional").click()
    days.fill("0")
    page.get_by_role("button", name="Enroll", exact=True).click()
    # Refused at the field, which takes the focus; the fold stays open.
    expect(page.get_by_label("…or days of access")).to_be_focused()
    expect(page.locator("#duration-days-error")).to_contain_text("A duration is from 1 to 3650 days")
    page.get_by_label("…or days of access").fill("30")
    page.get_by_role("button", name="Enroll", exact=True).click()

    expect(page).to_have_url(re.compile(r"/instructor/membership/preview/[\w-]+/$"))
    expect(page.locator("#preview-access")).to_contain_text("Access: 30 days from enrolling")
    page.get_by_role("button", name="Confirm: enroll (changes 1 person)").click()
    expect(page.get_by_role("heading", name="Results: enroll")).to_be_focused()
    expect(page.locator("#batch-access")).to_have_text("Access: 30 days from enrolling")

    enrollment = Enrollment.objects.get(course=course, user__username="kim")
    assert enrollment.access_until - enrollment.created == timedelta(days=30)

    page.context.clear_cookies()
    log_in(page, live_server.url, "kim")
    page.goto(f"{live_server.url}/courses/{course.key}/")
    expect(page.locator("#enrollment-access")).to_have_text(f"Access until {moment_shown(enrollment.access_until)}.")

    # --- 25 days later: the course's reminder (7 days before the end) arrives once ------------
    mail.outbox.clear()
    with time_machine.travel(enrollment.access_until - timedelta(days=5), tick=True):
        enrollments_remind()
        enrollments_remind()
    reminders = [m for m in mail.outbox if m.to == ["kim@example.com"]]
    assert len(reminders) == 1 and "Enrollment 101" in reminders[0].body

    # --- past the end: the expiry run ends it; the learner and the instructor see it ended -------
    with time_machine.travel(enrollment.access_until + timedelta(hours=1), tick=True):
        assert enrollments_expire().ended == 1
        enrollment.refresh_from_db()
        assert not enrollment.is_active
        page.context.clear_cookies()  # the sessions of a month ago have expired
        log_in(page, live_server.url, "kim")
        expect(page.get_by_role("region", name="Past courses")).to_contain_text("Enrollment 101")
        expect(page.get_by_role("region", name="Current courses")).not_to_contain_text("Enrollment 101")

        page.context.clear_cookies()
        log_in(page, live_server.url, "instructor")
        page.goto(f"{live_server.url}/courses/{course.key}/instructor/learners/?status=expired")
        expect(page.locator("tr[data-username='kim']")).to_contain_text("expired")
        page.get_by_label("Action", exact=True).select_option("extend")
        page.locator("#bulk-scope-all").check()
        page.get_by_role("button", name="Continue…").click()
        page.get_by_label("Extend by (days)").fill("30")
        page.get_by_role("button", name="Preview…").click()
        expect(page.locator("#bulk-preview")).to_contain_text("period ended: will be active again, for 30 days")
        page.get_by_role("button", name="Confirm: extend access of 1 learner").click()
        expect(page.get_by_role("alert").filter(has_text="Extend access: 1 learner changed.")).to_be_visible()
        enrollment.refresh_from_db()
        assert enrollment.is_active and enrollment.access_until > timezone.now() + timedelta(days=29)
