"""Browser journey: an instructor with many code batches finds an old one with the
Batch filter's search (htmx, as they type), filters the table by it, on a desktop
and on a phone."""

import pytest
from playwright.sync_api import Page, expect

from codes.selectors import BATCH_CHOICES
from codes.services import code_batch_generate
from courses.models import CourseRole
from tests.e2e.browser import log_in
from tests.e2e.test_journeys import shot
from tests.factories import CourseFactory, CourseRoleFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width", [1280, 390])
def test_instructor_finds_an_old_batch_by_searching(page: Page, live_server, width):
    course = CourseFactory(key="course-v1:Acme+ENR101+2026", display_name="Enrollment 101")
    instructor = UserFactory(username="instructor")
    CourseRoleFactory(course=course, role=CourseRole.Role.ADMIN, user=instructor)
    old = code_batch_generate(actor=instructor, courses=[course], count=2, prefix="SPRING")
    for _ in range(BATCH_CHOICES):
        code_batch_generate(actor=instructor, courses=[course], count=1, prefix="WEEKLY")

    log_in(page, live_server.url, "instructor")
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{live_server.url}/courses/{course.key}/instructor/codes/")
    batch = page.get_by_label("Batch", exact=True)
    expect(batch.locator("option")).to_have_count(BATCH_CHOICES + 1)  # All batches and the newest
    expect(batch.locator(f'option[value="{old.pk}"]')).to_have_count(0)
    expect(page.locator("#batch-choices-note")).to_have_text(f"The newest {BATCH_CHOICES} batches; search to find older ones.")

    page.get_by_label("Search by number, prefix or date").fill("spring")
    expect(page.locator("#batch-choices-note")).to_have_text("1 batch matching “spring”.")
    batch = page.get_by_label("Batch", exact=True)  # swapped in by htmx
    expect(batch.locator("option")).to_have_count(2)
    batch.select_option(str(old.pk))
    shot(page, f"codes-batch-search-{width}")
    page.get_by_role("button", name="Filter").click()

    expect(page).to_have_url(f"{live_server.url}/courses/{course.key}/instructor/codes/?batch={old.pk}&status=&batch_q=spring")
    expect(page.locator("#codes-count")).to_have_text("2 codes.")
    for code in old.codes.values_list("code", flat=True):
        expect(page.locator(f'tr[data-code="{code}"]')).to_be_visible()
    expect(page.get_by_label("Batch", exact=True)).to_have_value(str(old.pk))
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    shot(page, f"codes-batch-filtered-{width}")
