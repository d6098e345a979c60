"""Browser journeys: what a newcomer, an instructor and a learner see and click.

Playwright drives the system Chromium against pytest-django's live server,
which runs in this process, so the activation emails are read from
``django.core.mail.outbox`` (the locmem backend of the test run).
"""

import os
import re
from pathlib import Path

import pytest
from django.core import mail
from playwright.sync_api import Page, expect

from courses.models import CourseRole
from enrollments.models import Enrollment
from tests.factories import CourseFactory, CourseRoleFactory, EnrollmentFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "pass-word-123"
NEW_PASSWORD = "A-long-new-passphrase-42"
PASSWORD_LABEL = re.compile(r"^\s*Password\s*\*?\s*$")  # not "Password (again)"
ACTIVATION_LINK = re.compile(r"https?://[^\s]+/accounts/confirm-email/[^\s]+/")


def shot(page: Page, name: str) -> None:
    """With E2E_SCREENSHOTS=<dir>, save a full-page screenshot there to look at."""
    if folder := os.environ.get("E2E_SCREENSHOTS"):
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def expect_styled(page: Page) -> None:
    """Bootstrap (served from /static/vendor/) is applied: the navbar is Bootstrap blue."""
    expect(page.locator("nav.navbar")).to_have_css("background-color", "rgb(13, 110, 253)")
    expect(page.get_by_role("button", name="Log out")).to_have_css("cursor", "pointer")


# --- what a person does ------------------------------------------------------------


def log_in(page: Page, base_url: str, login: str, password: str) -> None:
    page.goto(f"{base_url}/")
    page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="Log in").click()
    page.get_by_label("Login").fill(login)
    page.get_by_label(PASSWORD_LABEL).fill(password)
    page.get_by_role("button", name="Sign In").click()


def sign_up(page: Page, base_url: str, *, email: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/")
    page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="Sign up").click()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Username").fill(username)
    page.get_by_label(PASSWORD_LABEL).fill(password)
    page.get_by_label("Password (again)").fill(password)
    page.get_by_role("button", name="Sign Up").click()
    expect(page.get_by_role("heading", name="Verify Your Email Address")).to_be_visible()


def activation_link_for(email: str) -> str:
    """The confirmation link of the activation email sent to ``email``."""
    for message in reversed(mail.outbox):
        if email in message.to:
            match = ACTIVATION_LINK.search(message.body)
            if match:
                return match.group(0)
    raise AssertionError(f"no activation email to {email}; outbox: {[(m.to, m.subject) for m in mail.outbox]}")


def activate(page: Page, email: str) -> None:
    page.goto(activation_link_for(email))
    expect(page.get_by_text(email)).to_be_visible()
    shot(page, "confirm-email")
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_text(f"You have confirmed {email}")).to_be_visible()


def instructor_setup():
    course = CourseFactory(key="course-v1:Acme+ENR101+2026", display_name="Enrollment 101")
    instructor = CourseRoleFactory(course=course, role=CourseRole.Role.ADMIN, user=UserFactory(username="instructor")).user
    return course, instructor


# --- journeys ----------------------------------------------------------------------


def test_newcomer_signs_up_activates_and_sees_dashboard(page: Page, live_server):
    mail.outbox.clear()
    sign_up(page, live_server.url, email="newcomer@example.com", username="newcomer", password=NEW_PASSWORD)

    [activation] = [m for m in mail.outbox if m.to == ["newcomer@example.com"]]
    assert activation.subject == "[Enrollment manager] Please Confirm Your Email Address"
    assert live_server.url in activation.body  # the link points at this site, over http
    activate(page, "newcomer@example.com")
    log_in(page, live_server.url, "newcomer", NEW_PASSWORD)

    expect(page.get_by_role("heading", name="Current courses")).to_be_visible()
    expect(page.get_by_text("You are not enrolled in any course yet.")).to_be_visible()
    shot(page, "newcomer-dashboard")
    expect(page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="newcomer")).to_be_visible()


def test_unactivated_account_cannot_log_in(page: Page, live_server):
    sign_up(page, live_server.url, email="waiting@example.com", username="waiting", password=NEW_PASSWORD)
    log_in(page, live_server.url, "waiting", NEW_PASSWORD)
    expect(page.get_by_role("heading", name="Verify Your Email Address")).to_be_visible()
    expect(page.get_by_role("heading", name="Current courses")).to_have_count(0)


def test_instructor_logs_in_and_opens_dashboard(page: Page, live_server):
    course, _ = instructor_setup()
    for learner in UserFactory.create_batch(3):
        EnrollmentFactory(course=course, user=learner, mode="audit")
    EnrollmentFactory(course=course, mode="verified")
    EnrollmentFactory(course=course, is_active=False)  # unenrolled: not counted
    expected = Enrollment.objects.filter(course=course, is_active=True).count()

    log_in(page, live_server.url, "instructor", PASSWORD)
    expect(page.get_by_role("heading", name="Courses you manage")).to_be_visible()
    page.get_by_role("link", name="Enrollment 101").click()

    expect(page.get_by_role("heading", name="Instructor dashboard")).to_be_visible()
    tabs = page.get_by_role("navigation", name="Instructor dashboard sections")
    for tab in ("Course info", "Membership", "Data download", "Codes"):
        expect(tabs.get_by_role("link", name=tab, exact=True)).to_be_visible()
    expect(tabs.get_by_role("link", name="Course info", exact=True)).to_have_attribute("aria-current", "page")
    expect(page.locator("#enrollment-total")).to_have_text(str(expected))
    expect(page.locator("td[data-mode=audit]")).to_have_text("3")
    expect(page.locator("td[data-mode=verified]")).to_have_text("1")
    shot(page, "course-info")

    # The tabs are real links.
    tabs.get_by_role("link", name="Membership", exact=True).click()
    expect(page.get_by_role("heading", name="Batch enrollment")).to_be_visible()
    expect(page.get_by_role("heading", name="Course team")).to_be_visible()


def test_learner_gets_403_on_instructor_dashboard(page: Page, live_server):
    course, _ = instructor_setup()
    UserFactory(username="learner")

    log_in(page, live_server.url, "learner", PASSWORD)
    expect(page.get_by_role("heading", name="Current courses")).to_be_visible()
    response = page.goto(f"{live_server.url}/courses/{course.key}/instructor/")

    assert response.status == 403
    expect(page.get_by_role("heading", name="403 · Not allowed")).to_be_visible()
    expect(page.get_by_text("Instructor dashboard")).to_have_count(0)
    shot(page, "forbidden")


def test_batch_enrollment_then_invitee_signs_up_and_finds_course(page: Page, live_server):
    course, _ = instructor_setup()
    UserFactory(username="alice", email="alice@example.com")
    UserFactory(username="bob", email="bob@example.com")
    mail.outbox.clear()

    log_in(page, live_server.url, "instructor", PASSWORD)
    page.goto(f"{live_server.url}/courses/{course.key}/instructor/")
    page.get_by_role("link", name="Membership", exact=True).click()

    pasted = "alice, BOB@EXAMPLE.COM\nnew.one@example.com\nnew.two@example.com not-an-email@\nNew.One@Example.com"
    page.get_by_label("Usernames or emails").fill(pasted)
    expect(page.get_by_label("Auto enroll")).to_be_checked()
    page.get_by_role("button", name="Enroll", exact=True).click()
    page.get_by_role("button", name=re.compile(r"^Confirm: enroll")).click()

    results = page.locator("#batch-results")
    expect(results.get_by_role("heading", name="Results: enroll")).to_be_visible()
    rows = results.locator("tbody tr")
    expect(rows).to_have_count(5)  # the duplicate is handled once
    outcomes = {
        "alice": "enrolled",
        "BOB@EXAMPLE.COM": "enrolled",
        "new.one@example.com": "allowed: will enroll on activation",
        "new.two@example.com": "allowed: will enroll on activation",
        "not-an-email@": "invalid email",
    }
    for identifier, outcome in outcomes.items():
        row = rows.filter(has=page.locator("td.identifier-cell", has_text=re.compile(f"^{re.escape(identifier)}$")))
        expect(row).to_have_count(1)
        expect(row.locator("td").nth(1)).to_have_text(outcome)
    expect(rows.filter(has_text="not-an-email@")).to_have_class(re.compile("table-danger"))
    summary = page.locator("#batch-summary")
    expect(summary).to_contain_text("enrolled: 2")
    expect(summary).to_contain_text("allowed: will enroll on activation: 2")
    expect(summary).to_contain_text("invalid email: 1")
    expect_styled(page)
    expect(results.locator("table")).to_have_class(re.compile(r"\btable\b"))
    expect(rows.filter(has_text="not-an-email@").locator("td").first).not_to_have_css("background-color", "rgba(0, 0, 0, 0)")
    shot(page, "membership")

    # The invitee was told by email, registers with that address and activates.
    page.get_by_role("button", name="Log out").click()
    invitation = [m for m in mail.outbox if "new.one@example.com" in m.to]
    assert invitation and "Enrollment 101" in invitation[0].body
    sign_up(page, live_server.url, email="new.one@example.com", username="newone", password=NEW_PASSWORD)
    activate(page, "new.one@example.com")
    log_in(page, live_server.url, "newone", NEW_PASSWORD)

    current = page.get_by_role("region", name="Current courses")
    expect(current.get_by_role("link", name="Enrollment 101")).to_be_visible()
    expect(current.get_by_text(course.key)).to_be_visible()
    shot(page, "invitee-dashboard")
