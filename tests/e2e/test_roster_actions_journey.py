"""Browser journeys of the learners table's row actions and the Settings tab:
an instructor unenrolls one learner with a reason from their row, and edits
the course's enrollment key (generating a strong one); course staff see the
settings read-only. On SQLite as on PostgreSQL."""

import re

import pytest
from playwright.sync_api import Page, expect

from courses.models import Course, CourseRole
from enrollments.models import Enrollment, EnrollmentAudit
from enrollments.services.course_settings import KEY_ALPHABET
from tests.e2e.browser import log_in
from tests.e2e.test_journeys import shot
from tests.factories import CohortFactory, CourseFactory, CourseRoleFactory, EnrollmentFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def course():
    course = CourseFactory(key="course-v1:Acme+ENR101+2026", display_name="Enrollment 101")
    CourseRoleFactory(course=course, role=CourseRole.Role.ADMIN, user=UserFactory(username="instructor"))
    CourseRoleFactory(course=course, role=CourseRole.Role.STAFF, user=UserFactory(username="assistant"))
    EnrollmentFactory(course=course, user=UserFactory(username="kim", email="kim@example.com", first_name="Kim", last_name="Lee"))
    EnrollmentFactory(course=course, user=UserFactory(username="lea", email="lea@example.com", first_name="Lea", last_name="Moss"))
    CohortFactory(course=course, name="Evening")
    return course


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["desktop", "phone"])
def test_instructor_unenrolls_one_learner_with_a_reason_from_their_row(page: Page, live_server, course, viewport):
    log_in(page, live_server.url, "instructor")
    if viewport:
        page.set_viewport_size(viewport)
    page.goto(f"{live_server.url}/courses/{course.key}/instructor/learners/")
    page.locator("tr[data-username='kim'] summary").click()  # the row's Actions disclosure
    page.get_by_role("link", name="Unenroll kim").click()

    heading = page.get_by_role("heading", name="Unenroll: kim?")
    expect(heading).to_be_focused()
    expect(page.locator("#action-scope")).to_have_text("This touches 1 learner:")
    expect(page.locator("#learner-summary")).to_contain_text("kim@example.com")
    expect(page.get_by_label("Email the learner")).to_be_checked()
    shot(page, f"learner-action-{'phone' if viewport else 'desktop'}")
    page.get_by_label("Reason (optional)").fill("Left the company")
    page.get_by_role("button", name="Unenroll kim").click()

    expect(page).to_have_url(re.compile(r"/instructor/learners/(\?.*)?$"))
    expect(page.get_by_role("alert").filter(has_text="kim was unenrolled. Reason: “Left the company”.")).to_be_visible()
    assert not Enrollment.objects.get(course=course, user__username="kim").is_active
    assert Enrollment.objects.get(course=course, user__username="lea").is_active
    audit = EnrollmentAudit.objects.get(course=course, identifier="kim")
    assert (audit.reason, audit.actor.username, audit.state_after) == ("Left the company", "instructor", "unenrolled")


def test_instructor_moves_a_learner_to_a_cohort_from_their_row(page: Page, live_server, course):
    log_in(page, live_server.url, "instructor")
    page.goto(f"{live_server.url}/courses/{course.key}/instructor/learners/")
    page.locator("tr[data-username='lea'] summary").click()
    page.get_by_role("link", name="Move cohort of lea").click()
    expect(page.get_by_role("combobox", name="Move to")).to_have_value(str(course.cohorts.get().pk))
    page.get_by_role("button", name="Move lea").click()
    expect(page.get_by_role("alert").filter(has_text="lea is now in the cohort Evening.")).to_be_visible()


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["desktop", "phone"])
def test_instructor_edits_the_enrollment_key_with_a_generated_strong_one(page: Page, live_server, course, viewport):
    log_in(page, live_server.url, "instructor")
    if viewport:
        page.set_viewport_size(viewport)
    page.goto(f"{live_server.url}/courses/{course.key}/instructor/settings/")
    key = page.get_by_label("Enrollment key")
    expect(key).to_have_value("")
    page.get_by_role("button", name="Generate a strong key").click()

    expect(page.locator("#key-generated")).to_contain_text("It is not saved yet")
    expect(key).to_be_focused()
    generated = key.input_value()
    assert re.fullmatch(rf"[{KEY_ALPHABET}]{{4}}(-[{KEY_ALPHABET}]{{4}}){{2}}", generated), generated
    assert Course.objects.get(pk=course.pk).enrollment_key == ""
    shot(page, f"settings-{'phone' if viewport else 'desktop'}")
    page.get_by_role("button", name="Save settings").click()

    expect(page.get_by_role("alert").filter(has_text="Settings saved. Enrollment key: set.")).to_be_visible()
    expect(key).to_have_value(generated)
    expect(page.locator("#settings-history")).to_contain_text("Enrollment key: set")
    assert Course.objects.get(pk=course.pk).enrollment_key == generated

    # A typed key of one's own, and a bad window refused with the focus on it.
    key.fill("spring-2026")
    page.get_by_label("Enrollment opens").fill("2026-03-01T09:00")
    page.get_by_label("Enrollment closes").fill("2026-02-01T09:00")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#settings-errors")).to_contain_text("Nothing was saved.")
    expect(page.get_by_label("Enrollment closes")).to_be_focused()
    assert Course.objects.get(pk=course.pk).enrollment_key == generated
    page.get_by_label("Enrollment closes").fill("2026-04-01T09:00")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("alert").filter(has_text="Enrollment key: changed")).to_be_visible()
    assert Course.objects.get(pk=course.pk).enrollment_key == "spring-2026"


def test_course_staff_see_the_settings_read_only(page: Page, live_server, course):
    log_in(page, live_server.url, "assistant")
    page.goto(f"{live_server.url}/courses/{course.key}/instructor/settings/")
    expect(page.locator("#settings-read-only")).to_be_visible()
    expect(page.get_by_label("Enrollment key")).to_be_disabled()
    expect(page.get_by_role("button", name="Save settings")).to_have_count(0)
    # Cohorts are the whole team's: staff create one.
    page.get_by_label("Cohort name").fill("Weekend")
    page.get_by_role("button", name="Create cohort").click()
    expect(page.get_by_role("alert").filter(has_text="Cohort Weekend created.")).to_be_visible()
    expect(page.locator("#cohort-table")).to_contain_text("Weekend")
