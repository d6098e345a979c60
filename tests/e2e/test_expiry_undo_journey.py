"""Browser journey, on SQLite as on PostgreSQL, desktop and phone: the expiry
run ends two learners' access; the instructor opens the undo of that expiry,
is told before confirming that both get their access back with no end date,
confirms, and is told so again; the learners' table shows them current."""

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from courses.models import CourseRole
from enrollments.models import Enrollment
from enrollments.services import enrollments_expire
from tests.e2e.browser import log_in
from tests.e2e.test_journeys import shot
from tests.factories import CourseFactory, CourseRoleFactory, EnrollmentFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DAY = dt.timedelta(days=1)


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["desktop", "phone"])
def test_instructor_undoes_an_expiry_and_the_learners_get_their_access_back(page: Page, live_server, viewport):
    size = "phone" if viewport else "desktop"
    course = CourseFactory(key="course-v1:Acme+EXP101+2026", display_name="Expiry 101")
    CourseRoleFactory(course=course, role=CourseRole.Role.ADMIN, user=UserFactory(username="instructor"))
    for name in ("ann", "bob"):
        EnrollmentFactory(course=course, user=UserFactory(username=name), access_until=timezone.now() - DAY)
    operation = enrollments_expire().ended_operations[course.pk]

    log_in(page, live_server.url, "instructor")
    if viewport:
        page.set_viewport_size(viewport)
    page.goto(f"{live_server.url}/courses/{course.key}/instructor/audit/operations/{operation}/undo/")
    expect(page.locator("#undo-end-removed")).to_contain_text("2 of them get their access back")
    expect(page.locator("#undo-restores")).to_contain_text("unenrolled → enrolled; access … – ")
    expect(page.locator("#undo-restores")).to_contain_text("→ no period")
    shot(page, f"expiry-undo-preview-{size}")
    page.locator("#undo-confirm").click()

    expect(page).to_have_url(re.compile(r"/instructor/audit/\?operation="))
    expect(page.get_by_text("2 people got their access back")).to_be_visible()
    assert set(Enrollment.objects.filter(course=course).values_list("is_active", "access_until")) == {(True, None)}
    page.goto(f"{live_server.url}/courses/{course.key}/instructor/learners/?status=active")
    expect(page.locator("tr[data-username='ann']")).to_be_visible()
    expect(page.locator("tr[data-username='bob']")).to_be_visible()
