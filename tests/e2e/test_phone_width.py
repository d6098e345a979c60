"""No page is wider than a phone, and every page passes axe-core.

At 390 px (an iPhone 12-15 in portrait) every page a person can reach by
following links must fit: wide tables scroll inside their own container, forms
and navigation reflow. The test does not keep a list of pages, which would go
stale: it seeds the demo, adds a little of everything (codes, a report, a batch
with results), then follows every same-site link from the home page as each
persona, visiting up to two pages of each URL name, and measures each page. On the same
visit it runs axe-core on the page (WCAG 2.1 AA, no serious or critical violation; see
accessibility.py), so one crawl per persona checks both. The crawl runs again in Arabic (right to left,
Bootstrap's mirrored stylesheet) for the admin and a learner."""

import datetime as dt
import os
from collections import deque
from pathlib import Path
from urllib.parse import urldefrag, urlsplit

import pytest
from django.core.management import call_command
from django.urls import Resolver404, resolve
from django.utils import timezone
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page

from codes.services import code_batch_generate
from courses.models import Course
from enrollments.models import BatchJob, Enrollment
from enrollments.services import batch_job_run_inline, cohort_create
from organisations.models import EnrollmentRule
from reports.services import report_request
from tests.codes.factories import GroupFactory
from tests.i18n.catalogs import ensure_compiled

from .accessibility import axe_violations
from .browser import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
PAGES_PER_URL_NAME = 2
# Not ours to lay out (Django admin, Swagger UI), or not pages (logout, files, JSON).
SKIPPED_PREFIXES = ("/admin/", "/api/", "/accounts/logout/", "/static/", "/media/", "/healthz")
SKIPPED_SUFFIXES = (".csv", ".xlsx")
# Pages no link leads to (addresses a person types): the platform-wide codes and groups, and a
# page that does not exist (the 404 page). Personas who may not see them get the 403 or 404 page.
TYPED_PATHS = ("/codes/", "/groups/", "/no-such-page/")


def _seed_everything():
    call_command("seed_demo", verbosity=0)
    from accounts.models import User

    instructor = User.objects.get(username="instructor")
    course = Course.objects.get(key="course-v1:Demo+ENR101+2026")
    code_batch_generate(actor=instructor, courses=[course], count=3, prefix="PHONE")
    report_request(course=course, kind="enrolled_profiles", requester=instructor)
    # A batch with its results page (linked from Recent batches), one row in error.
    batch_job_run_inline(
        course=course, identifiers=["learner7", "someone.with.a.rather.long.address@example.com", "not-an-email@"], action="enroll",
        auto_enroll=True, email_students=False, actor=instructor, reason="phone width",
    )
    # A cohort (its rename and delete pages) and the settings history.
    cohort_create(course=course, name="A cohort with a rather long name for a phone", actor=instructor)
    # A group the instructor leads (its codes page, linked from the dashboard) and an enrollment rule (its edit page).
    GroupFactory(name="A group with a rather long name for a phone", leaders=[instructor], courses=[course])
    EnrollmentRule.objects.create(name="Everyone at Acme Corp, in English", language="en").courses.set([course])
    # Access periods: an end, an upcoming start and an ended period (home's Past courses, the Access column, the story).
    now = timezone.now()
    enrolled = Enrollment.objects.filter(course=course, user__username__in=["learner1", "learner2", "learner3"])
    enrolled.filter(user__username="learner1").update(access_until=now + dt.timedelta(days=20))
    enrolled.filter(user__username="learner2").update(access_from=now + dt.timedelta(days=5), access_until=now + dt.timedelta(days=40))
    enrolled.filter(user__username="learner3").update(access_until=now - dt.timedelta(days=2))
    learner1 = User.objects.get(username="learner1")
    for key, fields in (("course-v1:Demo+DATA201+2026", {"access_from": now + dt.timedelta(days=3)}),
                        ("course-v1:Demo+OLD100+2025", {"access_until": now - dt.timedelta(days=30), "is_active": False})):
        Enrollment.objects.update_or_create(user=learner1, course=Course.objects.get(key=key), defaults=fields)
    # An uploaded file read by its job, waiting for its column choice (its page, linked from Recent batches).
    BatchJob.objects.create(
        course=course, requester=instructor, action="enroll", status=BatchJob.Status.SUCCEEDED,
        upload_name="a-rather-long-file-name-for-a-phone.csv",
        upload_rows=[["name", "email", "department"], ["Ada Lovelace", "someone.with.a.rather.long.address@example.com", "Analytical engines"]],
    )


def _wanted(base: str, href: str) -> str | None:
    url, _ = urldefrag(href)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or f"{parts.scheme}://{parts.netloc}" != base:
        return None
    if parts.path.startswith(SKIPPED_PREFIXES) or parts.path.endswith(SKIPPED_SUFFIXES):
        return None
    return url


def _crawl(page: Page, base: str) -> tuple[dict[str, int], list[str], set[str]]:
    """Crawl from the home page; return {url: width} for every page wider than the viewport,
    the accessibility violations of every page, and the URL names visited."""
    seen_per_name: dict[str, int] = {}
    visited: set[str] = set()
    queue = deque([f"{base}/", *(f"{base}{path}" for path in TYPED_PATHS)])
    too_wide: dict[str, int] = {}
    violations: list[str] = []
    while queue:
        url = queue.popleft()
        if url in visited:
            continue
        visited.add(url)
        try:
            name = resolve(urlsplit(url).path).view_name
        except Resolver404:
            name = "404"
        if seen_per_name.get(name, 0) >= PAGES_PER_URL_NAME:
            continue
        seen_per_name[name] = seen_per_name.get(name, 0) + 1
        try:
            response = page.goto(url)
        except PlaywrightError as error:
            if "Download is starting" in str(error):  # a file (report, results CSV), not a page
                continue
            raise
        if response is None or "text/html" not in response.headers.get("content-type", ""):
            continue
        if folder := os.environ.get("E2E_SCREENSHOTS"):  # to look at every page at phone width
            name_part = "".join(ch if ch.isalnum() else "_" for ch in urlsplit(url).path)[:80]
            page.screenshot(path=str(Path(folder) / f"phone{name_part}.png"), full_page=True)
        width = page.evaluate("Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)")
        if width > PHONE["width"]:
            too_wide[urlsplit(url).path + (f"?{urlsplit(url).query}" if urlsplit(url).query else "")] = width
        violations += axe_violations(page)
        for href in page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)"):
            if (wanted := _wanted(base, href)) and wanted not in visited:
                queue.append(wanted)
    return too_wide, violations, set(seen_per_name)


@pytest.mark.parametrize("persona", ["admin", "instructor", "staff", "learner1", "anonymous"])
def test_no_page_is_wider_than_a_phone(page: Page, live_server, persona):
    _seed_everything()
    if persona != "anonymous":
        log_in(page, live_server.url, persona, password=persona)  # at desktop width: the menu is open there
    page.set_viewport_size(PHONE)
    too_wide, violations, url_names = _crawl(page, live_server.url)
    assert len(url_names) > 3, "the crawl found no pages: is the home page linking anywhere?"
    assert not too_wide, f"pages wider than {PHONE['width']} px as {persona}: {too_wide}"
    assert not violations, f"accessibility violations as {persona}:\n" + "\n".join(violations)


# The admin's crawl reaches every page an instructor's does (and the platform's
# pages besides), in the same templates: the instructor is crawled in English only.
@pytest.mark.parametrize("persona", ["admin", "learner1"])
def test_no_page_is_wider_than_a_phone_in_arabic(page: Page, live_server, persona):
    """Right to left: the same crawl, axe and width checks with the person's language Arabic."""
    ensure_compiled()
    _seed_everything()
    from accounts.models import User

    log_in(page, live_server.url, persona, password=persona)
    User.objects.filter(username=persona).update(language="ar")
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/")
    assert (page.get_attribute("html", "lang"), page.get_attribute("html", "dir")) == ("ar", "rtl")
    too_wide, violations, url_names = _crawl(page, live_server.url)
    assert len(url_names) > 3, "the crawl found no pages: is the home page linking anywhere?"
    assert not too_wide, f"pages wider than {PHONE['width']} px in Arabic as {persona}: {too_wide}"
    assert not violations, f"accessibility violations in Arabic as {persona}:\n" + "\n".join(violations)
