"""Browser journey: an instructor runs a batch on the Membership tab, sees its preview, confirms and lands on its results."""

import re

import pytest
from playwright.sync_api import Page, expect

from courses.models import CourseRole
from enrollments.models import BatchJob, EnrollmentAudit
from tests.e2e.browser import log_in
from tests.e2e.test_journeys import shot
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
def test_instructor_lands_on_the_results_and_a_reload_does_not_resubmit(page: Page, live_server, course, viewport):
    log_in(page, live_server.url, "instructor")
    if viewport:  # after logging in: on a phone the Log out button the helper waits for is folded away
        page.set_viewport_size(viewport)
    page.goto(f"{live_server.url}/courses/{course.key}/instructor/membership/")
    page.get_by_label("Usernames or emails").fill("learner1\nlearner1@example.com\nkim, new.one@example.com ghost")
    page.get_by_label("Reason").fill("Spring intake")
    page.get_by_role("button", name="Enroll", exact=True).click()

    # First the preview, with nothing written yet.
    expect(page).to_have_url(re.compile(r"/instructor/membership/preview/[\w-]+/$"))
    expect(page.get_by_role("heading", name="Preview: enroll")).to_be_focused()
    preview = page.locator("#batch-preview")
    expect(preview).to_contain_text("Nothing has been changed yet.")
    for text in ("will enroll: 1", "will be invited, enrolled on activation: 1", "already enrolled: 1", "named twice: 1", "no such user: 1"):
        expect(page.locator("#preview-summary")).to_contain_text(text)
    expect(page.locator("#preview-emails")).to_have_text("2 emails would be sent. Reason: “Spring intake”.")
    expect(preview.get_by_role("heading", name="No such user (1)")).to_be_visible()
    expect(preview).to_contain_text("ghost")
    assert not EnrollmentAudit.objects.exists() and not BatchJob.objects.exists()
    if viewport:  # the preview's tables scroll inside their box: the page itself is no wider than the phone
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    shot(page, f"membership-preview-{'phone' if viewport else 'desktop'}")
    page.get_by_role("button", name="Confirm: enroll (changes 2 people)").click()

    expect(page).to_have_url(re.compile(r"/instructor/membership/jobs/[0-9a-f-]{36}/results/$"))
    heading = page.get_by_role("heading", name="Results: enroll")
    expect(heading).to_be_focused()
    expect(heading).to_be_in_viewport()
    results = page.locator("#batch-results")
    expect(results).to_contain_text("5 identifiers, submitted by instructor")
    rows = results.locator("tbody tr")
    expect(rows).to_have_count(5)
    expect(rows.nth(0)).to_contain_text("already enrolled")
    expect(rows.nth(1)).to_contain_text("named twice (same person as learner1)")
    summary = page.locator("#batch-summary")
    for text in ("enrolled: 1", "allowed: will enroll on activation: 1", "already enrolled: 1", "named twice: 1", "no such user: 1"):
        expect(summary).to_contain_text(text)
    # The form is fresh for the next batch.
    expect(page.get_by_label("Reason")).to_have_value("")
    expect(page.get_by_label("Usernames or emails")).to_have_value("")
    shot(page, f"membership-results-{'phone' if viewport else 'desktop'}")

    audits, jobs = EnrollmentAudit.objects.count(), BatchJob.objects.count()
    assert (audits, jobs) == (2, 1)  # kim enrolled, new.one allowed
    page.reload()
    expect(page.get_by_role("heading", name="Results: enroll")).to_be_focused()
    assert (EnrollmentAudit.objects.count(), BatchJob.objects.count()) == (audits, jobs)


def test_an_empty_submit_comes_back_with_the_message_focused(page: Page, live_server, course):
    log_in(page, live_server.url, "instructor")
    page.goto(f"{live_server.url}/courses/{course.key}/instructor/membership/")
    page.get_by_role("button", name="Enroll", exact=True).click()
    alert = page.locator("#batch-errors")
    expect(alert).to_have_text("Enter at least one username or email, or upload a file.")
    expect(alert).to_be_focused()
    assert not BatchJob.objects.exists()
    shot(page, "membership-error")


def test_an_oversized_paste_gets_a_friendly_page_with_the_way_back(page: Page, live_server, course):
    log_in(page, live_server.url, "instructor")
    page.goto(f"{live_server.url}/courses/{course.key}/instructor/membership/")
    # Over 10 MB (DATA_UPLOAD_MAX_MEMORY_SIZE): set directly, typing it would take minutes.
    page.locator("#id_identifiers").evaluate("(box) => { box.value = 'someone@example.com '.repeat(600000); }")
    # Sending 12 MB to the live server takes a while on a busy machine: a longer wait for this one step.
    page.get_by_role("button", name="Enroll", exact=True).click(timeout=90_000)
    expect(page.get_by_role("heading", name="That was too large to send at once")).to_be_visible(timeout=90_000)
    expect(page.get_by_text("nothing was changed")).to_be_visible()
    shot(page, "membership-too-large")
    page.get_by_role("link", name="Back to the Membership tab").click()
    expect(page.get_by_role("heading", name="Batch enrollment")).to_be_visible()
    assert not BatchJob.objects.exists() and not EnrollmentAudit.objects.exists()


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["desktop", "phone"])
def test_an_uploaded_file_shows_its_rows_then_its_chosen_column_is_previewed_and_confirmed(page: Page, live_server, course, viewport, tmp_path):
    # learner1 is also a username: as a name in column 1 it must never be enrolled or unenrolled.
    people = tmp_path / "people.csv"
    people.write_text("name,email\nlearner1,kim@example.com\nNew One,new.one@example.com\n")
    log_in(page, live_server.url, "instructor")
    if viewport:
        page.set_viewport_size(viewport)
    page.goto(f"{live_server.url}/courses/{course.key}/instructor/membership/")
    page.get_by_label("…or upload a CSV or text file").set_input_files(str(people))
    page.get_by_role("button", name="Unenroll", exact=True).click()

    # The file was read by its job: its first rows, the headed email column chosen, nothing written.
    expect(page).to_have_url(re.compile(r"/instructor/membership/file/[0-9a-f-]{36}/$"))
    heading = page.get_by_role("heading", name="people.csv: the first 3 of 3 rows")
    expect(heading).to_be_focused()
    expect(page.locator("#upload-rows tbody tr")).to_have_count(3)
    expect(page.get_by_label("Column of usernames or emails")).to_have_value("2")
    expect(page.get_by_label("The first row is a heading (not a person)")).to_be_checked()
    if viewport:
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    shot(page, f"membership-file-columns-{'phone' if viewport else 'desktop'}")
    page.get_by_role("button", name="Preview").click()

    expect(page).to_have_url(re.compile(r"/instructor/membership/preview/[\w-]+/$"))
    expect(page.get_by_role("heading", name="Preview: unenroll")).to_be_focused()
    expect(page.locator("#preview-summary")).to_contain_text("not enrolled: 2")
    expect(page.locator("#batch-preview")).not_to_contain_text("learner1")
    assert not EnrollmentAudit.objects.exists()
    page.get_by_role("button", name="Confirm: unenroll (changes nobody)").click()

    expect(page).to_have_url(re.compile(r"/instructor/membership/jobs/[0-9a-f-]{36}/results/$"))
    expect(page.locator("#batch-summary")).to_contain_text("not enrolled: 2")
    assert not EnrollmentAudit.objects.exists()
    assert course.enrollments.get(user__username="learner1").is_active  # the name was never an identifier
