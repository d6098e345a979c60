"""Browser journey (issue 17): a French and an Arabic browser run a batch on the
Membership tab in their language, on a desktop and on a phone, and the longer
words fit (the page is no wider than the phone)."""

import re

import pytest
from playwright.sync_api import Page, expect

from courses.models import CourseRole
from enrollments.models import EnrollmentAudit
from tests.e2e.browser import log_in
from tests.e2e.test_journeys import shot
from tests.factories import CourseFactory, CourseRoleFactory, EnrollmentFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
# What the page says in each language: the batch form's box and button, then the preview's heading and Confirm.
WORDS = {
    "fr": ("Noms d'utilisateur ou e-mails", "Inscrire", "Aperçu : inscrire", "Confirmer : inscrire (concerne 2 personnes)"),
    "ar": ("أسماء المستخدمين أو عناوين البريد الإلكتروني", "تسجيل", "معاينة: تسجيل", "تأكيد: تسجيل (يغيّر 2 شخصين)"),
}


@pytest.fixture
def course():
    course = CourseFactory(key="course-v1:Acme+ENR101+2026", display_name="Enrollment 101")
    CourseRoleFactory(course=course, role=CourseRole.Role.ADMIN, user=UserFactory(username="instructor"))
    EnrollmentFactory(course=course, user=UserFactory(username="learner1", email="learner1@example.com"))
    UserFactory(username="kim", email="kim@example.com")
    return course


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["desktop", "phone"])
@pytest.mark.parametrize("language", ["fr", "ar"])
def test_a_batch_previews_in_the_browsers_language_and_fits_a_phone(page: Page, live_server, course, language, viewport):
    box, button, heading, confirm = WORDS[language]
    log_in(page, live_server.url, "instructor")
    # From here on the browser asks for the language, as a French or Arabic browser does.
    page.set_extra_http_headers({"Accept-Language": language})
    if viewport:
        page.set_viewport_size(viewport)
    page.goto(f"{live_server.url}/courses/{course.key}/instructor/membership/")
    shot(page, f"i18n-membership-{language}-{'phone' if viewport else 'desktop'}")
    if viewport:
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]

    page.get_by_label(box).fill("learner1 kim someone.with.a.rather.long.address@example.com")
    page.get_by_role("button", name=button, exact=True).click()

    expect(page).to_have_url(re.compile(r"/instructor/membership/preview/[\w-]+/$"))
    expect(page.get_by_role("heading", name=heading)).to_be_focused()
    expect(page.locator("#preview-confirm button")).to_have_text(confirm)
    assert not EnrollmentAudit.objects.exists()
    shot(page, f"i18n-preview-{language}-{'phone' if viewport else 'desktop'}")
    if viewport:
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
