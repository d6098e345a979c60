"""Browser journey: an instructor asks for the "may enroll" report on the Data
download tab, watches it under Pending tasks, and downloads the file when the
real worker is done.

Playwright drives the system Chromium against pytest-django's live server; a
real Celery worker (another process) produces the report."""

import os
import re
from pathlib import Path

import psycopg
import pytest
from django.db import connection
from playwright.sync_api import Page, expect

from courses.models import CourseRole
from reports.models import ReportTask
from tests.celery_worker import celery_worker  # noqa: F401
from tests.e2e.browser import log_in
from tests.factories import AllowanceFactory, CourseFactory, CourseRoleFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True)]



def shot(page: Page, name: str) -> None:
    """With E2E_SCREENSHOTS=<dir>, save a full-page screenshot there to look at."""
    if folder := os.environ.get("E2E_SCREENSHOTS"):
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def hold_allowances(settings_dict) -> psycopg.Connection:
    """Another connection holding an exclusive lock on the allowances table: the
    worker's report blocks on its first query and stays *running* until released,
    so the test sees the pending state however fast the machine is."""
    lock = psycopg.connect(
        host=settings_dict["HOST"] or "127.0.0.1",
        port=settings_dict["PORT"] or 5432,
        user=settings_dict["USER"],
        password=settings_dict["PASSWORD"],
        dbname=settings_dict["NAME"],
    )
    lock.execute("LOCK TABLE enrollments_allowance IN ACCESS EXCLUSIVE MODE")
    return lock


def test_instructor_requests_a_report_sees_it_pending_and_downloads_it(page: Page, live_server, celery_worker):  # noqa: F811
    course = CourseFactory(key="course-v1:Acme+E2E+2026", display_name="Reports journey")
    instructor = UserFactory(username="instructor")
    CourseRoleFactory(course=course, user=instructor, role=CourseRole.Role.STAFF)
    AllowanceFactory(course=course, email="not-yet@example.org", created_by=instructor)

    log_in(page, live_server.url, "instructor")
    page.goto(f"{live_server.url}/courses/{course.key}/instructor/data/")
    expect(page.get_by_role("heading", name="Pending tasks")).to_be_visible()
    expect(page.get_by_text("No tasks are pending.")).to_be_visible()

    lock = hold_allowances(connection.settings_dict)
    try:
        page.get_by_role("button", name="Download a CSV of learners who can enroll").click()
        # Queued, or already taken by the worker: either way it is under Pending tasks.
        expect(page.get_by_role("alert").filter(has_text=re.compile(r"is (queued|being produced); it is listed under Pending tasks"))).to_be_visible()
        pending = page.locator("#pending-tasks")
        expect(pending.get_by_text("Report: Learners who can enroll")).to_be_visible()
        expect(pending.get_by_text("instructor")).to_be_visible()
        expect(pending.get_by_role("progressbar")).to_be_visible()
        # The worker took it and is waiting on the lock: the page polls and shows it running.
        expect(pending.get_by_text("Running")).to_be_visible(timeout=30_000)
        shot(page, "reports-pending")
        # Still there after a reload.
        page.reload()
        expect(page.locator("#pending-tasks").get_by_text("Report: Learners who can enroll")).to_be_visible()
    finally:
        lock.rollback()
        lock.close()

    # The polling fragment brings the file link without a reload.
    link = page.locator("#report-files").get_by_role("link", name=re.compile(r"^Acme_E2E_may_enroll_info_.*\.csv$"))
    expect(link).to_be_visible(timeout=30_000)
    expect(page.get_by_text("No tasks are pending.")).to_be_visible()
    assert ReportTask.objects.get(course=course).status == "succeeded"
    shot(page, "reports-done")

    with page.expect_download() as download_info:
        link.click()
    download = download_info.value
    assert re.fullmatch(r"Acme_E2E_may_enroll_info_\d{4}-\d{2}-\d{2}-\d{4}\.csv", download.suggested_filename)
    content = open(download.path(), encoding="utf-8").read()
    assert "not-yet@example.org" in content
    assert content.startswith("course,email,auto_enroll,allowed_by,allowed_at")
