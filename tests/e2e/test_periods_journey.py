"""Browser journey of access periods, on SQLite as on PostgreSQL: an
instructor finds the expired learners of a course, extends their access by 30
days (the preview says one will be active again), sees the new end in the
Access column and the learner's story, then undoes it; the learner's home
shows an upcoming course's start and an ended one under Past courses."""

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from courses.models import CourseRole
from enrollments.models import Enrollment, EnrollmentAudit, Source
from tests.e2e.browser import log_in
from tests.e2e.test_journeys import shot
from tests.factories import CourseFactory, CourseRoleFactory, EnrollmentFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DAY = dt.timedelta(days=1)


@pytest.fixture
def course():
    now = timezone.now()
    course = CourseFactory(key="course-v1:Acme+ENR101+2026", display_name="Enrollment 101")
    CourseRoleFactory(course=course, role=CourseRole.Role.ADMIN, user=UserFactory(username="instructor"))
    EnrollmentFactory(course=course, user=UserFactory(username="kim", email="kim@example.com"), access_until=now + 10 * DAY)
    EnrollmentFactory(course=course, user=UserFactory(username="lea", email="lea@example.com"), is_active=False, access_until=now - 2 * DAY)
    EnrollmentFactory(course=course, user=UserFactory(username="max", email="max@example.com"))
    return course


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["desktop", "phone"])
def test_instructor_extends_an_expired_learner_and_undoes_it(page: Page, live_server, course, viewport):
    size = "phone" if viewport else "desktop"
    log_in(page, live_server.url, "instructor")
    if viewport:
        page.set_viewport_size(viewport)
    page.goto(f"{live_server.url}/courses/{course.key}/instructor/learners/?status=expired")
    expect(page.locator("#learners-count")).to_contain_text("1 learner matches")
    expect(page.locator("tr[data-username='lea']")).to_contain_text("expired")
    shot(page, f"periods-learners-expired-{size}")

    page.get_by_label("Action", exact=True).select_option("extend")
    page.locator("#bulk-scope-all").check()
    page.get_by_role("button", name="Continue…").click()
    expect(page.get_by_role("heading", name="Extend access of 1 learner?")).to_be_focused()
    page.get_by_label("Extend by (days)").fill("0")
    page.get_by_role("button", name="Preview…").click()
    expect(page.locator("#bulk-form-errors")).to_be_focused()
    expect(page.get_by_text("A duration is from 1 to 3650 days")).to_be_visible()
    page.get_by_label("Extend by (days)").fill("30")
    page.get_by_role("button", name="Preview…").click()
    expect(page.locator("#bulk-preview")).to_contain_text("period ended: will be active again, for 30 days")
    shot(page, f"periods-extend-preview-{size}")
    page.get_by_role("button", name="Confirm: extend access of 1 learner").click()

    expect(page).to_have_url(re.compile(r"/instructor/learners/\?status=expired$"))
    expect(page.get_by_role("alert").filter(has_text="Extend access: 1 learner changed.")).to_be_visible()
    lea = Enrollment.objects.get(course=course, user__username="lea")
    assert lea.is_active and lea.access_until > timezone.now() + 29 * DAY
    page.goto(f"{live_server.url}/courses/{course.key}/instructor/learners/?q=lea")
    expect(page.locator("tr[data-username='lea']")).to_contain_text(f"{timezone.localtime(lea.access_until):%-d %b %Y}")
    shot(page, f"periods-learners-after-{size}")
    page.get_by_role("link", name="lea", exact=True).click()
    expect(page.locator(".story-periods")).to_contain_text("still current")
    shot(page, f"periods-story-{size}")

    audit = EnrollmentAudit.objects.get(course=course, identifier="lea", source=Source.ROSTER)
    page.goto(f"{live_server.url}/courses/{course.key}/instructor/audit/operations/{audit.operation_id}/undo/")
    expect(page.locator("#undo-restores")).to_contain_text("enrolled → unenrolled")
    shot(page, f"periods-undo-{size}")
    page.locator("#undo-confirm").click()
    lea.refresh_from_db()
    assert not lea.is_active and lea.access_until < timezone.now()


def test_the_learner_sees_an_upcoming_start_and_past_courses(page: Page, live_server):
    now = timezone.now()
    learner = UserFactory(username="pat")
    start = now + 4 * DAY
    EnrollmentFactory(user=learner, course=CourseFactory(display_name="Starts soon"), access_from=start, access_until=now + 60 * DAY)
    EnrollmentFactory(user=learner, course=CourseFactory(display_name="Finished course"), is_active=False, access_until=now - 9 * DAY)
    log_in(page, live_server.url, "pat")
    current = page.get_by_role("region", name="Current courses")
    expect(current).to_contain_text(f"Starts {timezone.localtime(start):%-d %b %Y}")
    expect(current).not_to_contain_text("Finished course")
    expect(page.get_by_role("region", name="Past courses")).to_contain_text("Finished course")
    shot(page, "periods-home-desktop")
    page.set_viewport_size(PHONE)
    shot(page, "periods-home-phone")
