"""Browser journey: an instructor unenrolls a pasted list with a mistake in
it, notices it in the results, undoes the batch and sees everyone back."""

import re

import pytest
from playwright.sync_api import Page, expect

from courses.models import CourseRole
from enrollments.models import Enrollment, EnrollmentAudit, Source
from tests.e2e.browser import log_in
from tests.e2e.test_journeys import shot
from tests.factories import CourseFactory, CourseRoleFactory, EnrollmentFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def course():
    course = CourseFactory(key="course-v1:Acme+ENR101+2026", display_name="Enrollment 101")
    CourseRoleFactory(course=course, role=CourseRole.Role.ADMIN, user=UserFactory(username="instructor"))
    for name, mode in (("ada", "verified"), ("bob", "audit"), ("cyd", "audit")):
        EnrollmentFactory(course=course, user=UserFactory(username=name, email=f"{name}@example.com"), mode=mode)
    return course


def enrolled(course):
    return sorted(Enrollment.objects.filter(course=course).values_list("user__username", "is_active", "mode"))


def test_a_mistaken_unenroll_is_undone_from_its_results(page: Page, live_server, course):
    before = enrolled(course)
    log_in(page, live_server.url, "instructor")
    page.goto(f"{live_server.url}/courses/{course.key}/instructor/membership/")
    # The mistake: only cyd was leaving, the whole class was pasted.
    page.get_by_label("Usernames or emails").fill("ada\nbob\ncyd")
    page.get_by_label("Reason").fill("Left the programme")
    page.get_by_role("button", name="Unenroll", exact=True).click()
    # The preview says what would happen; the mistake goes unnoticed and is confirmed.
    page.get_by_role("button", name="Confirm: unenroll (changes 3 people)").click()

    expect(page).to_have_url(re.compile(r"/instructor/membership/jobs/[0-9a-f-]{36}/results/$"))
    expect(page.locator("#batch-summary")).to_contain_text("unenrolled: 3")
    assert not Enrollment.objects.filter(course=course, is_active=True).exists()

    page.get_by_role("link", name="Undo this batch…").click()
    heading = page.get_by_role("heading", name="Undo this operation? 3 people would be restored")
    expect(heading).to_be_focused()
    expect(page.locator("#undo-restores tbody tr")).to_have_count(3)
    expect(page.locator("#undo-restores")).to_contain_text("unenrolled → enrolled")
    expect(page.get_by_label("Email each person whose enrollment is restored, saying what was restored")).not_to_be_checked()
    shot(page, "undo-preview")
    assert not Enrollment.objects.filter(course=course, is_active=True).exists()  # the preview wrote nothing

    page.get_by_role("button", name="Undo: restore 3 people").click()
    expect(page).to_have_url(re.compile(r"/instructor/audit/\?operation=[0-9a-f-]{36}$"))
    expect(page.get_by_text("Undone: 3 people restored as before the operation.")).to_be_visible()
    expect(page.locator("#audit-table tbody tr")).to_have_count(3)
    expect(page.locator("#audit-table")).to_contain_text("Undo")
    shot(page, "undo-done")
    assert enrolled(course) == before
    assert EnrollmentAudit.objects.filter(source=Source.UNDO).count() == 3


def test_an_operation_is_undone_from_the_audit_log_and_its_undo_too(page: Page, live_server, course):
    log_in(page, live_server.url, "instructor")
    page.goto(f"{live_server.url}/courses/{course.key}/instructor/membership/")
    page.get_by_label("Usernames or emails").fill("bob")
    page.get_by_role("button", name="Unenroll", exact=True).click()
    page.get_by_role("button", name="Confirm: unenroll (changes 1 person)").click()
    expect(page.locator("#batch-summary")).to_contain_text("unenrolled: 1")

    page.goto(f"{live_server.url}/courses/{course.key}/instructor/audit/")
    page.locator("#audit-table").get_by_role("link", name=re.compile("^Undo")).first.click()
    page.get_by_role("button", name="Undo: restore 1 person").click()
    expect(page.get_by_text("Undone: 1 person restored as before the operation.")).to_be_visible()
    assert Enrollment.objects.get(user__username="bob").is_active

    # The undo is an operation of its own: undoing it unenrolls bob again.
    page.locator("#chosen-operation-undo").click()
    page.get_by_role("button", name="Undo: restore 1 person").click()
    expect(page.get_by_text("Undone: 1 person restored as before the operation.")).to_be_visible()
    assert not Enrollment.objects.get(user__username="bob").is_active


def test_a_large_undo_runs_in_the_background_and_ends_with_its_result(page: Page, live_server, course, settings, monkeypatch):
    from enrollments.models import UndoJob
    from enrollments.services import enrollment_batch_update
    from enrollments.services import undo as undo_module

    before = enrolled(course)
    instructor = UserFactory._meta.model.objects.get(username="instructor")
    op = enrollment_batch_update(
        course=course, identifiers=["ada", "bob", "cyd"], action="unenroll", auto_enroll=False, email_students=False, actor=instructor,
    ).operation_id
    # Above the limit, two people per chunk: the undo is a job of two chunks.
    settings.ENROLLMENT_SYNC_LIMIT = 2
    monkeypatch.setattr(undo_module, "UNDO_CHUNK", 2)
    log_in(page, live_server.url, "instructor")
    page.set_viewport_size({"width": 390, "height": 844})  # the progress page must fit a phone
    page.goto(f"{live_server.url}/courses/{course.key}/instructor/audit/operations/{op}/undo/")
    page.get_by_role("button", name="Undo: restore 3 people").click()

    expect(page).to_have_url(re.compile(r"/instructor/audit/undo-jobs/[0-9a-f-]{36}/$"))
    expect(page.get_by_role("heading", name="Undo: 3 people")).to_be_focused()
    expect(page.locator("#undo-job-result")).to_have_text("Undone: 3 people restored as before the operation.")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "undo-job-done")
    job = UndoJob.objects.get()
    assert (job.status, job.done, job.total) == (UndoJob.Status.SUCCEEDED, 3, 3)
    assert enrolled(course) == before

    # The undo is an operation of its own: undoing it (three people again: a job too) unenrolls everyone again.
    page.locator("#undo-job-undo").click()
    page.get_by_role("button", name="Undo: restore 3 people").click()
    expect(page.locator("#undo-job-result")).to_have_text("Undone: 3 people restored as before the operation.")
    assert not Enrollment.objects.filter(course=course, is_active=True).exists()
