"""Browser journey of the codes feature: an instructor generates codes, a learner
redeems one, the instructor sees it used and deactivates another.

Runs Playwright on the system Chromium against pytest-django's live server."""

import datetime

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import Page, expect

from courses.models import CourseRole
from tests.codes.factories import EnrollmentCodeFactory
from tests.e2e.browser import log_in
from tests.e2e.test_journeys import shot
from tests.factories import CourseFactory, CourseRoleFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]



@pytest.fixture
def browser_context_args(browser_context_args):
    return {**browser_context_args, "permissions": ["clipboard-read", "clipboard-write"]}


def log_out(page: Page) -> None:
    page.get_by_role("button", name="Log out").click()


def test_generate_copy_redeem_use_and_deactivate(page: Page, live_server):
    page.set_default_timeout(15_000)
    course = CourseFactory(key="course-v1:Acme+ENR101+2026", display_name="Enrollment 101")
    CourseRoleFactory(course=course, role=CourseRole.Role.ADMIN, user=UserFactory(username="instructor"))
    UserFactory(username="learner")
    codes_url = f"{live_server.url}/courses/{course.key}/instructor/codes/"

    # The instructor generates 5 single-use codes with a prefix and copies them.
    log_in(page, live_server.url, "instructor")
    page.goto(codes_url)
    page.get_by_label("Number of codes").fill("5")
    page.get_by_label("Code prefix").fill("SPRING26")
    page.get_by_role("button", name="Generate codes").click()
    panel = page.locator("#generated-codes")
    expect(panel).to_be_visible()
    codes = panel.inner_text().split()
    assert len(codes) == 5 and all(c.startswith("SPRING26-") for c in codes)
    page.get_by_role("button", name="Copy all").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()").split() == codes
    log_out(page)

    # A learner redeems one (typed in lower case) and finds the course on their dashboard.
    log_in(page, live_server.url, "learner")
    page.get_by_role("link", name="Redeem a code").click()
    page.get_by_label("Enrollment code").fill(" " + codes[0].lower() + " ")
    page.get_by_role("button", name="Redeem").click()
    expect(page.locator("#redeem-result")).to_contain_text("Enrollment 101")
    page.get_by_role("link", name="Go to your current courses").click()
    expect(page.get_by_role("region", name="Current courses").get_by_role("link", name="Enrollment 101")).to_be_visible()
    log_out(page)

    # The instructor sees it used, and deactivates another one.
    log_in(page, live_server.url, "instructor")
    page.goto(codes_url)
    used_row = page.locator(f'tr[data-code="{codes[0]}"]')
    expect(used_row.locator(".uses")).to_have_text("1 / 1")
    expect(used_row.locator(".status")).to_have_text("Used")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(f'tr[data-code="{codes[1]}"]').get_by_role("button", name="Deactivate").click()
    expect(page.get_by_role("alert")).to_contain_text(f"Code {codes[1]} is deactivated.")
    expect(page.locator(f'tr[data-code="{codes[1]}"] .status')).to_have_text("Deactivated")
    log_out(page)

    # A learner trying the deactivated code is told so.
    log_in(page, live_server.url, "learner")
    page.goto(f"{live_server.url}/redeem/")
    page.get_by_label("Enrollment code").fill(codes[1])
    page.get_by_role("button", name="Redeem").click()
    expect(page.get_by_text("This code has been deactivated")).to_be_visible()
    page.screenshot(path="/tmp/codes_redeem_deactivated.png", full_page=True)


@pytest.mark.parametrize("width", [1280, 390])
def test_expiry_date_shows_as_the_chosen_day(page: Page, live_server, width):
    course = CourseFactory(key="course-v1:Acme+ENR101+2026", display_name="Enrollment 101")
    CourseRoleFactory(course=course, role=CourseRole.Role.ADMIN, user=UserFactory(username="instructor"))
    UserFactory(username="learner")
    last_day = timezone.localdate() + datetime.timedelta(days=30)
    expired = EnrollmentCodeFactory(courses=[course], expires_on=timezone.localdate() - datetime.timedelta(days=1))

    log_in(page, live_server.url, "instructor")
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{live_server.url}/courses/{course.key}/instructor/codes/")
    page.get_by_label("Number of codes").fill("2")
    page.get_by_label("Expiry date").fill(last_day.isoformat())
    page.get_by_role("button", name="Generate codes").click()
    code = page.locator("#generated-codes").inner_text().split()[0]
    row = page.locator(f'tr[data-code="{code}"]')
    expect(row.locator(".expires time")).to_have_text(f"{last_day.day} {last_day:%b %Y}")
    expect(row.locator(".expires .expiry-zone")).to_have_text(f"end of day, {settings.TIME_ZONE}")
    expect(row.locator(".status")).to_have_text("Active")
    page.get_by_label("Batch").select_option("")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(f'tr[data-code="{expired.code}"] .status')).to_have_text("Expired")
    expect(page.locator(f'tr[data-code="{code}"] .expires time')).to_have_text(f"{last_day.day} {last_day:%b %Y}")
    shot(page, f"codes-expiry-{width}")

    page.context.clear_cookies()
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server.url, "learner")
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{live_server.url}/redeem/")
    page.get_by_label("Enrollment code").fill(expired.code)
    page.get_by_role("button", name="Redeem").click()
    day = expired.expires_on
    expect(page.get_by_text(f"This code expired at the end of {day.day} {day:%b %Y} ({expired.batch.time_zone}).")).to_be_visible()
    shot(page, f"codes-redeem-expired-{width}")
