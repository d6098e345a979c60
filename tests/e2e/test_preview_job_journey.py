"""Browser journey: a list above ENROLLMENT_SYNC_LIMIT is previewed in the
background (the page polls its progress and announces the preview), then
confirmed and applied exactly as previewed."""

import re

import pytest
from playwright.sync_api import Page, expect

from courses.models import CourseRole
from enrollments.models import Allowance, BatchJob, EnrollmentAudit, MembershipPreview
from enrollments.services import previews
from tests.e2e.browser import log_in
from tests.factories import CourseFactory, CourseRoleFactory, EnrollmentFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def course():
    course = CourseFactory(key="course-v1:Acme+ENR101+2026", display_name="Enrollment 101")
    CourseRoleFactory(course=course, role=CourseRole.Role.ADMIN, user=UserFactory(username="instructor"))
    EnrollmentFactory(course=course, user=UserFactory(username="learner1", email="learner1@example.com"))
    UserFactory(username="kim", email="kim@example.com")
    return course


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["desktop", "phone"])
def test_a_long_list_is_previewed_in_the_background_then_confirmed(page: Page, live_server, course, settings, monkeypatch, viewport):
    settings.ENROLLMENT_SYNC_LIMIT = 2
    # No worker picks the preview up: the test plays the worker once the page shows its progress.
    monkeypatch.setattr(previews, "job_send", lambda model, pk: None)
    log_in(page, live_server.url, "instructor")
    if viewport:
        page.set_viewport_size(viewport)
    page.goto(f"{live_server.url}/courses/{course.key}/instructor/membership/")
    page.get_by_label("Usernames or emails").fill("learner1 kim new.one@example.com ghost")
    page.get_by_role("button", name="Enroll", exact=True).click()

    expect(page).to_have_url(re.compile(r"/instructor/membership/preview/[0-9a-f-]{36}/$"))
    expect(page.get_by_role("heading", name="Preview: enroll 4 identifiers")).to_be_focused()
    expect(page.get_by_role("progressbar", name="Progress of the preview")).to_contain_text("0 / 4")
    expect(page.get_by_role("button", name=re.compile("^Confirm"))).to_have_count(0)
    if viewport:
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]

    previews.preview_job_run(job_id=MembershipPreview.objects.get().pk)
    # The polled part turns into the preview, and the live region says so.
    expect(page.get_by_role("status")).to_have_text("The preview is ready: see what would happen below, then confirm.")
    for text in ("will enroll: 1", "will be invited, enrolled on activation: 1", "already enrolled: 1", "no such user: 1"):
        expect(page.locator("#preview-summary")).to_contain_text(text)
    expect(page.locator("#batch-preview")).to_contain_text("ghost")
    assert not EnrollmentAudit.objects.exists() and not BatchJob.objects.exists() and not Allowance.objects.exists()
    if viewport:
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    page.get_by_role("button", name="Confirm: enroll (changes 2 people)").click()

    expect(page).to_have_url(re.compile(r"/instructor/membership/jobs/[0-9a-f-]{36}/results/$"))
    expect(page.get_by_text("Confirmed: 4 identifiers are being processed in the background, exactly as previewed")).to_be_visible()
    expect(page.get_by_role("heading", name="Results: enroll")).to_be_focused()
    job = BatchJob.objects.get()
    assert job.status == "succeeded" and job.summary == {"enrolled": 1, "allowed_auto": 1, "already_enrolled": 1, "no_such_user": 1}
    assert EnrollmentAudit.objects.count() == 2
