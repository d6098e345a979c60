"""Browser journey in the embedded default (no broker, tasks in-process): the
report an instructor asks for is ready when the page comes back, and the
message says so with the link, not "listed under Pending tasks"."""

import re

import pytest
from playwright.sync_api import Page, expect

from courses.models import CourseRole
from reports.models import ReportTask
from tests.e2e.browser import log_in
from tests.e2e.test_journeys import shot
from tests.factories import AllowanceFactory, CourseFactory, CourseRoleFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width", [1280, 390])
def test_in_the_default_mode_a_requested_report_is_ready_with_its_link(page: Page, live_server, settings, width):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    course = CourseFactory(key="course-v1:Acme+E2E+2026", display_name="Reports journey")
    instructor = UserFactory(username="instructor")
    CourseRoleFactory(course=course, user=instructor, role=CourseRole.Role.STAFF)
    AllowanceFactory(course=course, email="not-yet@example.org", created_by=instructor)

    log_in(page, live_server.url, "instructor")
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{live_server.url}/courses/{course.key}/instructor/data/")
    expect(page.get_by_text("A report is produced as soon as you ask for it")).to_be_visible()
    page.get_by_role("button", name="Download a CSV of learners who can enroll").click()

    message = page.get_by_role("alert")
    expect(message).to_contain_text("The report “Learners who can enroll” is ready")
    expect(message).not_to_contain_text("Pending tasks")
    expect(page.get_by_text("No tasks are pending.")).to_be_visible()
    shot(page, f"reports-default-mode-{width}")
    assert ReportTask.objects.get(course=course).status == "succeeded"

    with page.expect_download() as download_info:
        message.get_by_role("link", name=re.compile(r"^Acme_E2E_may_enroll_info_.*\.csv$")).click()
    download = download_info.value
    assert "not-yet@example.org" in open(download.path(), encoding="utf-8").read()
