"""The pages that list who a preview or an undo touches, at desktop and phone
width (on SQLite as on PostgreSQL): the learners table's bulk preview with
"Show all" of one outcome, the undo preview of an operation over two courses
(course by course), and a Membership preview waiting for its worker, linked
from Pending tasks for the person who made it."""

import pytest
from playwright.sync_api import Page, expect

from courses.models import CourseRole
from enrollments.models import EnrollmentAudit, MembershipPreview, Source
from organisations.models import UnitKind
from organisations.selectors.targets import Target
from organisations.services import unit_members_add
from tests.e2e.browser import log_in
from tests.e2e.test_journeys import shot
from tests.factories import CourseFactory, CourseRoleFactory, EnrollmentFactory, PlatformAdminFactory, UserFactory
from tests.organisations.factories import OrgUnitFactory
from tests.organisations.test_services import link

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
VIEWPORTS = pytest.mark.parametrize("viewport", [None, PHONE], ids=["desktop", "phone"])


def fits(page: Page) -> None:
    width = page.viewport_size["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width


@pytest.fixture
def course():
    course = CourseFactory(key="course-v1:Acme+ENR101+2026", display_name="Enrollment 101")
    CourseRoleFactory(course=course, role=CourseRole.Role.ADMIN, user=UserFactory(username="instructor"))
    return course


@VIEWPORTS
def test_the_bulk_preview_shows_all_of_one_outcome(page: Page, live_server, course, viewport):
    for i in range(12):
        EnrollmentFactory(course=course, user=UserFactory(username=f"learner{i:02d}"))
    log_in(page, live_server.url, "instructor")
    if viewport:
        page.set_viewport_size(viewport)
    page.goto(f"{live_server.url}/courses/{course.key}/instructor/learners/bulk/?action=unenroll&scope=all")
    page.get_by_role("button", name="Preview…").click()
    outcome = page.locator("tr[data-outcome='changed:']")
    expect(outcome).to_contain_text("learner09 …")
    expect(outcome).not_to_contain_text("learner10")
    outcome.get_by_role("button", name="Show all 12 will be unenrolled").click()
    expect(page.get_by_role("heading", name="Will be unenrolled: all 12")).to_be_focused()
    expect(page.locator("#bulk-shown li")).to_have_count(12)
    expect(page.locator("#bulk-shown")).to_contain_text("learner11")
    expect(page.get_by_role("button", name="Confirm: unenroll 12 learners")).to_be_visible()
    fits(page)
    shot(page, f"bulk-preview-show-all-{'phone' if viewport else 'desktop'}")


@VIEWPORTS
def test_the_undo_preview_of_an_operation_over_two_courses_goes_course_by_course(page: Page, live_server, course, viewport):
    other = CourseFactory(key="course-v1:Acme+A-COURSE-WITH-A-RATHER-LONG-KEY+2026", display_name="Another course with a rather long name")
    admin = PlatformAdminFactory(username="platformadmin")
    qual = Target(unit=OrgUnitFactory(kind=UnitKind.QUALIFICATION))
    dept = Target(unit=OrgUnitFactory(kind=UnitKind.DEPARTMENT))
    link(qual, admin, course=course)
    link(qual, admin, course=other)
    unit_members_add(target=dept, users=[UserFactory(username="ann"), UserFactory(username="someone.with.a.long.name")], actor=admin)
    link(dept, admin, qualification=qual.unit)
    log_in(page, live_server.url, "platformadmin")
    if viewport:
        page.set_viewport_size(viewport)
    operation_id = EnrollmentAudit.objects.filter(course=course, source=Source.UNIT).values_list("operation_id", flat=True).distinct().get()
    page.goto(f"{live_server.url}/courses/{course.key}/instructor/audit/?operation={operation_id}")
    page.get_by_role("link", name="Undo…").click()
    tables = page.locator("table.undo-course-restores")
    expect(tables).to_have_count(2)
    expect(tables.nth(0).locator("caption")).to_contain_text("In Enrollment 101")
    expect(tables.nth(1).locator("caption")).to_contain_text("In Another course with a rather long name")
    expect(tables.nth(1)).to_contain_text("someone.with.a.long.name")
    fits(page)
    shot(page, f"undo-two-courses-{'phone' if viewport else 'desktop'}")


@VIEWPORTS
def test_a_waiting_membership_preview_is_linked_from_pending_tasks(page: Page, live_server, course, viewport):
    instructor = CourseRole.objects.get(course=course).user
    MembershipPreview.objects.create(course=course, requester=instructor, action="enroll", total=12_000)
    log_in(page, live_server.url, "instructor")
    if viewport:
        page.set_viewport_size(viewport)
    page.goto(f"{live_server.url}/courses/{course.key}/instructor/data/")
    row = page.locator("#pending-tasks tr", has_text="Preview of a batch enroll")
    expect(row).to_contain_text("0 / 12,000")
    fits(page)
    shot(page, f"pending-preview-{'phone' if viewport else 'desktop'}")
    row.get_by_role("link", name="Preview of a batch enroll").click()
    expect(page.get_by_role("heading", name="Preview: enroll 12,000 identifiers")).to_be_visible()
