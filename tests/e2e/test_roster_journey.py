"""Browser journey on the Learners tab: an instructor searches for a learner by
part of their name, filters by source "code", selects every matching learner,
changes their mode and exports the CSV; the same with JavaScript off."""

import csv
import re

import pytest
from playwright.sync_api import Browser, Page, expect

from courses.models import CourseRole
from enrollments.models import Enrollment, EnrollmentAudit, Source
from tests.e2e.browser import log_in
from tests.e2e.test_journeys import shot
from tests.factories import CourseFactory, CourseRoleFactory, EnrollmentFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def course():
    course = CourseFactory(key="course-v1:Acme+ROSTER+2026", display_name="Roster 101", modes="audit,verified")
    CourseRoleFactory(course=course, role=CourseRole.Role.ADMIN, user=UserFactory(username="instructor"))
    people = [
        ("annabel", "Annabel", "Smithson", Source.CODE),
        ("bert", "Bert", "Coder", Source.CODE),
        ("carla", "Carla", "Batchelor", Source.BATCH),
        ("dmitri", "Dmitri", "Selfridge", Source.SELF),
    ]
    for username, first, last, source in people:
        EnrollmentFactory(course=course, user=UserFactory(username=username, first_name=first, last_name=last), source=source)
    return course


def rows(page: Page):
    return page.locator("#learners-table tbody tr[data-username]")


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["desktop", "phone"])
def test_search_filter_select_all_change_mode_and_export(page: Page, live_server, course, viewport, tmp_path):
    log_in(page, live_server.url, "instructor")
    if viewport:
        page.set_viewport_size(viewport)
    learners = f"{live_server.url}/courses/{course.key}/instructor/learners/"
    page.goto(learners)
    expect(page.locator("#learners-count")).to_contain_text("4 learners in this course")

    # Part of a name: the results update as one types (htmx), and the address follows.
    page.get_by_role("searchbox", name="Search").fill("bel smi")
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_contain_text("Annabel Smithson")
    expect(page.locator("#learners-count")).to_contain_text("1 learner matches")
    expect(page).to_have_url(re.compile(r"[?&]q=bel\+smi"))

    # Filter by how they came in: "code".
    page.get_by_role("searchbox", name="Search").fill("")
    expect(rows(page)).to_have_count(4)
    page.get_by_label("Came in by").select_option("code")
    expect(rows(page)).to_have_count(2)
    expect(page.locator("#learners-count")).to_contain_text("2 learners match")
    expect(page).to_have_url(f"{learners}?source=code")
    shot(page, f"learners-filtered-{'phone' if viewport else 'desktop'}")

    # The back button walks the filters back, and forward again.
    page.go_back()
    expect(page).to_have_url(learners)
    expect(rows(page)).to_have_count(4)
    page.go_back()
    expect(page).to_have_url(re.compile(r"[?&]q=bel\+smi"))
    expect(rows(page)).to_have_count(1)
    page.go_forward()
    expect(page).to_have_url(learners)
    expect(rows(page)).to_have_count(4)
    page.go_forward()
    expect(page).to_have_url(f"{learners}?source=code")
    expect(rows(page)).to_have_count(2)

    # Every matching learner, change mode: the confirmation says how many.
    page.get_by_label("Action", exact=True).select_option("change_mode")
    page.get_by_label("all 2 learners matching").check()
    page.get_by_role("button", name="Continue…").click()
    expect(page.get_by_role("heading", name="Change the mode of 2 learners?")).to_be_focused()
    expect(page.locator("#bulk-names")).to_have_text("Among them: annabel, bert.")
    shot(page, f"learners-bulk-confirm-{'phone' if viewport else 'desktop'}")
    page.get_by_label("New mode").select_option("verified")
    page.get_by_label("Reason (optional)").fill("Paid for certificates")
    page.get_by_role("button", name="Preview…").click()
    # The preview: what changes for whom, nothing written yet; Confirm applies exactly that.
    expect(page.get_by_role("heading", name="Change the mode of 2 learners: what it would do")).to_be_focused()
    expect(page.locator("#bulk-preview")).to_contain_text("mode audit → verified")
    expect(page.locator("#bulk-preview")).to_contain_text("annabel, bert")
    assert not EnrollmentAudit.objects.filter(course=course, reason="Paid for certificates").exists()
    page.get_by_role("button", name="Confirm: change the mode of 2 learners").click()

    # Back on the filtered table, with what was done.
    expect(page).to_have_url(re.compile(r"/instructor/learners/\?source=code$"))
    expect(page.get_by_role("alert").filter(has_text="Change mode: 2 learners changed.")).to_be_visible()
    expect(rows(page)).to_have_count(2)
    for row in rows(page).all():
        expect(row).to_contain_text("verified")
    assert dict(Enrollment.objects.filter(course=course).values_list("user__username", "mode")) == {
        "annabel": "verified", "bert": "verified", "carla": "audit", "dmitri": "audit",
    }
    assert EnrollmentAudit.objects.filter(course=course, reason="Paid for certificates").count() == 2

    # The export holds exactly the filtered rows.
    with page.expect_download() as download:
        page.locator("#export-learners-csv").click()
    target = tmp_path / download.value.suggested_filename
    download.value.save_as(target)
    assert target.name.startswith("Acme_ROSTER_learners_") and target.suffix == ".csv"
    exported = list(csv.DictReader(target.open(newline="", encoding="utf-8")))
    assert sorted((r["username"], r["mode"], r["source"]) for r in exported) == [("annabel", "verified", "code"), ("bert", "verified", "code")]


def test_without_javascript_the_filters_and_pages_still_work(browser: Browser, live_server, course):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Login").fill("instructor")
    page.get_by_label(re.compile(r"^\s*Password\s*\*?\s*$")).fill("pass-word-123")
    page.get_by_role("button", name="Sign In").click()
    page.goto(f"{live_server.url}/courses/{course.key}/instructor/learners/")
    page.get_by_label("Came in by").select_option("code")
    page.get_by_role("searchbox", name="Search").fill("bert")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page).to_have_url(re.compile(r"source=code"))
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_contain_text("Bert Coder")
    # A row's actions open without a script, too.
    page.locator("#learners-table summary").first.click()
    expect(page.get_by_role("link", name="Change mode of bert")).to_be_visible()
    context.close()
