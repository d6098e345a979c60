"""Browser journeys of a learner: the course page tells them before any click
whether they can enroll, and a newcomer's name follows them from sign-up to
the account page."""

import datetime as dt
import re

import pytest
from django.core import mail
from playwright.sync_api import Page, expect

from tests.e2e.browser import log_in
from tests.e2e.test_journeys import NEW_PASSWORD, activate, shot
from tests.factories import CourseFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 720}


def test_learner_sees_enrollment_closed_and_no_enroll_button(page: Page, live_server):
    CourseFactory(key="course-v1:Acme+OLD+2025", display_name="Closed course",
                           enrollment_end=dt.datetime(2025, 9, 30, 18, 0, tzinfo=dt.UTC))
    keyed = CourseFactory(key="course-v1:Acme+KEY+2026", display_name="Keyed course", enrollment_key="sesame")
    UserFactory(username="learner")

    log_in(page, live_server.url, "learner")
    page.goto(f"{live_server.url}/courses/")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="Closed course"))
    expect(row).to_contain_text("Closed 30 Sep 2025")
    expect(page.get_by_role("row").filter(has=page.get_by_role("link", name="Keyed course"))).to_contain_text("Open, with a key")
    shot(page, "catalog")
    page.set_viewport_size(PHONE)
    shot(page, "catalog-phone")
    page.set_viewport_size(DESKTOP)

    row.get_by_role("link", name="Closed course").click()
    enrollment = page.get_by_role("region", name="Enrollment")
    expect(enrollment).to_contain_text("Enrollment closed on 30 September 2025 at 18:00 (UTC).")
    expect(enrollment.get_by_role("button", name="Enroll")).to_have_count(0)
    shot(page, "course-closed")
    page.set_viewport_size(PHONE)
    shot(page, "course-closed-phone")

    page.goto(f"{live_server.url}/courses/{keyed.key}/")
    enrollment = page.get_by_role("region", name="Enrollment")
    expect(enrollment.get_by_label("Enrollment key")).to_be_visible()
    shot(page, "course-keyed-phone")
    enrollment.get_by_label("Enrollment key").fill("sesame")
    enrollment.get_by_role("button", name="Enroll").click()
    expect(page.get_by_text("You are enrolled in Keyed course.")).to_be_visible()
    expect(enrollment.get_by_role("button", name="Unenroll")).to_be_visible()


def test_newcomer_signs_up_with_a_name_and_finds_it_on_the_account_page(page: Page, live_server):
    mail.outbox.clear()
    page.goto(f"{live_server.url}/accounts/signup/")
    page.get_by_label("Email").fill("grace@example.com")
    page.get_by_label("Username").fill("grace")
    page.get_by_label("First name (optional)").fill("Grace")
    page.get_by_label("Last name (optional)").fill("Hopper")
    page.get_by_label(re.compile(r"^\s*Password\s*\*?\s*$")).fill(NEW_PASSWORD)
    page.get_by_label("Password (again)").fill(NEW_PASSWORD)
    shot(page, "signup-with-name")
    page.set_viewport_size(PHONE)
    shot(page, "signup-with-name-phone")
    page.set_viewport_size(DESKTOP)
    page.get_by_role("button", name="Sign Up").click()
    expect(page.get_by_role("heading", name="Verify Your Email Address")).to_be_visible()
    activate(page, "grace@example.com")

    log_in(page, live_server.url, "grace", NEW_PASSWORD)
    expect(page.get_by_role("heading", name="Welcome, Grace Hopper")).to_be_visible()
    page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="grace").click()
    expect(page.locator("#account-name")).to_have_text("Grace Hopper")
    expect(page.get_by_label("First name (optional)")).to_have_value("Grace")
    shot(page, "account")

    page.get_by_label("Last name (optional)").fill("Brewster Murray Hopper")
    page.get_by_role("button", name="Save name").click()
    expect(page.get_by_text("Your name was saved. You appear as Grace Brewster Murray Hopper.")).to_be_visible()
    expect(page.locator("#account-name")).to_have_text("Grace Brewster Murray Hopper")
    page.set_viewport_size(PHONE)
    shot(page, "account-phone")


def test_newcomer_cannot_take_a_look_alike_of_a_username_but_may_sign_up_in_their_own_script(page: Page, live_server):
    UserFactory(username="dave")
    page.goto(f"{live_server.url}/accounts/signup/")
    page.get_by_label("Email").fill("tsalagi@example.com")
    page.get_by_label("Username").fill("ᎠᎪᏙᎬ")  # Cherokee letters that read as "DAVE"
    page.get_by_label(re.compile(r"^\s*Password\s*\*?\s*$")).fill(NEW_PASSWORD)
    page.get_by_label("Password (again)").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Sign Up").click()
    expect(page.get_by_text("This username looks too much like an existing one")).to_be_visible()
    expect(page.get_by_label("Username")).to_have_value("ᎠᎪᏙᎬ")
    shot(page, "signup-lookalike")

    page.get_by_label("Username").fill("ᏣᎳᎩ")  # Tsalagi, in Cherokee: nobody's look-alike
    page.get_by_label(re.compile(r"^\s*Password\s*\*?\s*$")).fill(NEW_PASSWORD)
    page.get_by_label("Password (again)").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Sign Up").click()
    expect(page.get_by_role("heading", name="Verify Your Email Address")).to_be_visible()
    activate(page, "tsalagi@example.com")
    log_in(page, live_server.url, "ᏣᎳᎩ", NEW_PASSWORD)
    expect(page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="ᏣᎳᎩ")).to_be_visible()
