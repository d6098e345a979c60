"""Browser journey (issue 14, h7's part): an instructor reads the audit log,
opens a learner's story from it, checks the status of an invited address,
revokes that invitation with a reason, and finds the revocation in the log."""

import re

import pytest
from playwright.sync_api import Page, expect

from courses.models import CourseRole
from enrollments.models import Allowance, EnrollmentAudit
from enrollments.services import enrollment_batch_update
from tests.e2e.browser import log_in
from tests.e2e.test_journeys import shot
from tests.factories import CourseFactory, CourseRoleFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def course():
    course = CourseFactory(key="course-v1:Acme+ENR101+2026", display_name="Enrollment 101")
    instructor = CourseRoleFactory(course=course, role=CourseRole.Role.ADMIN, user=UserFactory(username="instructor")).user
    UserFactory(username="maria", email="maria.lopez@example.com", first_name="Maria", last_name="Lopez")
    enrollment_batch_update(course=course, identifiers=["maria"], action="enroll", auto_enroll=True, email_students=True,
                            actor=instructor, reason="Spring intake")
    enrollment_batch_update(course=course, identifiers=["guest@example.org", "other.guest@example.org"], action="enroll",
                            auto_enroll=True, email_students=True, actor=instructor, reason="Invited early")
    return course


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["desktop", "phone"])
def test_instructor_reads_a_story_and_revokes_an_invitation(page: Page, live_server, course, viewport):
    log_in(page, live_server.url, "instructor")
    if viewport:
        page.set_viewport_size(viewport)
    suffix = "-phone" if viewport else ""
    page.goto(f"{live_server.url}/courses/{course.key}/instructor/")
    page.get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    table = page.locator("#audit-table")
    expect(table.locator("tbody tr")).to_have_count(3)
    page.get_by_label("Change to").select_option("enrolled")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"action=enrolled"))
    expect(table.locator("tbody tr")).to_have_count(1)
    shot(page, f"h7-audit-log{suffix}")

    # A learner's story, from their row
    table.get_by_role("link", name="maria").click()
    heading = page.get_by_role("heading", name=re.compile("Maria Lopez"))
    expect(heading).to_be_focused()
    expect(page.locator("#story-state")).to_have_text("enrolled")
    history = page.locator(".story-history")
    expect(history).to_contain_text("not enrolled → enrolled")
    expect(history).to_contain_text("Reason: Spring intake")
    expect(history).to_contain_text("Email “Enrolled” to maria.lopez@example.com")
    shot(page, f"h7-story{suffix}")

    # Check enrollment status of an invited address
    page.get_by_label("Username or email").fill("GUEST@example.org")
    page.get_by_role("button", name="Check").click()
    expect(page.locator("#story-state")).to_have_text("allowed: will enroll on activation")
    expect(page.locator(".story-history")).to_contain_text("Email “Allowed to enroll” to guest@example.org")

    # Revoke that invitation, with a reason
    page.get_by_role("link", name="Invitations").click()
    invitations = page.locator("#invitations-table")
    expect(invitations.locator("tbody tr")).to_have_count(2)
    shot(page, f"h7-invitations{suffix}")
    invitations.get_by_role("link", name="Revoke guest@example.org").click()
    confirm = page.get_by_role("heading", name="Revoke 1 invitation?")
    expect(confirm).to_be_focused()
    page.get_by_label("Reason").fill("Registered with another address")
    shot(page, f"h7-revoke-confirm{suffix}")
    page.get_by_role("button", name="Revoke 1 invitation").click()
    expect(page.locator(".alert-success")).to_contain_text("1 invitation revoked.")
    expect(invitations.locator("tbody tr")).to_have_count(1)
    expect(invitations.get_by_role("link", name="Revoke guest@example.org", exact=True)).to_have_count(0)
    assert not Allowance.objects.filter(email="guest@example.org").exists()
    assert EnrollmentAudit.objects.filter(identifier="guest@example.org", reason="Registered with another address").exists()

    # ...and it is in the log
    page.goto(f"{live_server.url}/courses/{course.key}/instructor/audit/")
    expect(page.locator("#audit-table tbody tr").first).to_contain_text("Registered with another address")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= (viewport or {"width": 1280})["width"]
