"""Issue 14's browser journey, in one sitting: an instructor searches for a
learner by part of their name, opens their story, unenrolls them with a reason
from their row, filters by source "code", selects every matching learner and
changes their mode, exports the CSV, revokes an invitation and edits the
course's enrollment key. Each step checks what the instructor sees, then what
was stored. At desktop width (the phone width crawl covers these pages too);
on SQLite as on PostgreSQL."""

import csv
import re

import pytest
from playwright.sync_api import Page, expect

from courses.models import Course, CourseRole
from enrollments.models import Allowance, Enrollment, EnrollmentAudit, Source
from enrollments.services import enrollment_batch_update
from tests.e2e.browser import log_in
from tests.factories import CourseFactory, CourseRoleFactory, EnrollmentFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def course():
    course = CourseFactory(key="course-v1:Acme+JOURNEY+2026", display_name="Journey 101", modes="audit,verified")
    instructor = CourseRoleFactory(course=course, role=CourseRole.Role.ADMIN, user=UserFactory(username="instructor")).user
    people = [
        ("annabel", "Annabel", "Smithson", Source.SELF),
        ("bert", "Bert", "Coder", Source.CODE),
        ("cora", "Cora", "Keyes", Source.CODE),
        ("dmitri", "Dmitri", "Batchelor", Source.BATCH),
    ]
    for username, first, last, source in people:
        user = UserFactory(username=username, email=f"{username}@example.com", first_name=first, last_name=last)
        EnrollmentFactory(course=course, user=user, source=source, mode="audit")
    # Two open invitations, for addresses without an account.
    enrollment_batch_update(course=course, identifiers=["guest@example.org", "other.guest@example.org"], action="enroll",
                            auto_enroll=True, email_students=False, actor=instructor, reason="Invited early")
    return course


def learner_rows(page: Page):
    return page.locator("#learners-table tbody tr[data-username]")


def test_instructor_works_through_the_roster_from_search_to_settings(page: Page, live_server, course, tmp_path):
    log_in(page, live_server.url, "instructor")
    page.goto(f"{live_server.url}/courses/{course.key}/instructor/")
    tabs = page.get_by_role("navigation", name="Instructor dashboard sections")
    tabs.get_by_role("link", name="Learners").click()
    expect(page.locator("#learners-count")).to_contain_text("4 learners in this course")
    # The table can show before htmx has bound its typing trigger: type once the page has loaded.
    page.wait_for_load_state("load")

    # 1. Part of a name finds the learner (the table updates as one types).
    page.get_by_role("searchbox", name="Search").fill("nabel smi")
    expect(learner_rows(page)).to_have_count(1)
    expect(learner_rows(page).first).to_contain_text("Annabel Smithson")
    expect(page.locator("#learners-count")).to_contain_text("1 learner matches")

    # 2. Their story: who they are, how they came in.
    learner_rows(page).get_by_role("link", name="annabel", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile("Annabel Smithson"))).to_be_focused()
    expect(page.locator("#story-state")).to_have_text("enrolled")
    expect(page.locator(".story-facts")).to_contain_text("annabel@example.com")

    # 3. Back to the search, and unenroll them from their row, with a reason.
    page.go_back()
    expect(learner_rows(page)).to_have_count(1)
    page.locator("tr[data-username='annabel'] summary").click()  # the row's Actions disclosure
    page.get_by_role("link", name="Unenroll annabel").click()
    expect(page.get_by_role("heading", name="Unenroll: annabel?")).to_be_focused()
    expect(page.locator("#action-scope")).to_have_text("This touches 1 learner:")
    page.get_by_label("Reason (optional)").fill("Moved to the autumn run")
    page.get_by_role("button", name="Unenroll annabel").click()
    expect(page.get_by_role("alert").filter(has_text="annabel was unenrolled. Reason: “Moved to the autumn run”.")).to_be_visible()
    expect(page.locator("tr[data-username='annabel']")).to_contain_text("unenrolled")
    assert not Enrollment.objects.get(course=course, user__username="annabel").is_active
    audit = EnrollmentAudit.objects.get(course=course, identifier="annabel")
    assert (audit.reason, audit.actor.username, audit.state_after) == ("Moved to the autumn run", "instructor", "unenrolled")

    # 4. Filter by how they came in: "code" (the search cleared first).
    page.get_by_role("link", name="Clear filters").click()
    expect(learner_rows(page)).to_have_count(4)
    page.wait_for_load_state("load")  # the filters' htmx triggers are bound
    page.get_by_label("Came in by").select_option("code")
    expect(learner_rows(page)).to_have_count(2)
    expect(page.locator("#learners-count")).to_contain_text("2 learners match")
    expect(page).to_have_url(re.compile(r"\?source=code$"))

    # 5. Every matching learner: change their mode; the confirmation says how many and who.
    page.get_by_label("Action", exact=True).select_option("change_mode")
    page.get_by_label("all 2 learners matching").check()
    page.get_by_role("button", name="Continue…").click()
    expect(page.get_by_role("heading", name="Change the mode of 2 learners?")).to_be_focused()
    expect(page.locator("#bulk-names")).to_have_text("Among them: bert, cora.")
    page.get_by_label("New mode").select_option("verified")
    page.get_by_label("Reason (optional)").fill("Paid for certificates")
    page.get_by_role("button", name="Preview…").click()
    # The preview: what changes for whom, nothing written yet; Confirm applies exactly that.
    expect(page.get_by_role("heading", name="Change the mode of 2 learners: what it would do")).to_be_focused()
    expect(page.locator("#bulk-preview")).to_contain_text("mode audit → verified")
    expect(page.locator("#bulk-preview")).to_contain_text("bert, cora")
    assert not EnrollmentAudit.objects.filter(course=course, reason="Paid for certificates").exists()
    page.get_by_role("button", name="Confirm: change the mode of 2 learners").click()
    expect(page).to_have_url(re.compile(r"/instructor/learners/\?source=code$"))
    expect(page.get_by_role("alert").filter(has_text="Change mode: 2 learners changed.")).to_be_visible()
    for row in learner_rows(page).all():
        expect(row).to_contain_text("verified")
    assert dict(Enrollment.objects.filter(course=course).values_list("user__username", "mode")) == {
        "annabel": "audit", "bert": "verified", "cora": "verified", "dmitri": "audit",
    }
    assert EnrollmentAudit.objects.filter(course=course, reason="Paid for certificates").count() == 2

    # 6. The CSV holds exactly the filtered rows, as they are now.
    with page.expect_download() as download:
        page.locator("#export-learners-csv").click()
    target = tmp_path / download.value.suggested_filename
    download.value.save_as(target)
    assert target.suffix == ".csv"
    exported = list(csv.DictReader(target.open(newline="", encoding="utf-8")))
    assert sorted((r["username"], r["email"], r["mode"], r["source"]) for r in exported) == [
        ("bert", "bert@example.com", "verified", "code"), ("cora", "cora@example.com", "verified", "code"),
    ]

    # 7. Revoke one of the open invitations.
    page.get_by_role("link", name="Invitations").first.click()
    invitations = page.locator("#invitations-table")
    expect(invitations.locator("tbody tr")).to_have_count(2)
    invitations.get_by_role("link", name="Revoke guest@example.org", exact=True).click()
    expect(page.get_by_role("heading", name="Revoke 1 invitation?")).to_be_focused()
    page.get_by_label("Reason").fill("Registered with another address")
    page.get_by_role("button", name="Revoke 1 invitation").click()
    expect(page.locator(".alert-success")).to_contain_text("1 invitation revoked.")
    expect(invitations.locator("tbody tr")).to_have_count(1)
    expect(invitations).to_contain_text("other.guest@example.org")
    assert list(Allowance.objects.filter(course=course).values_list("email", flat=True)) == ["other.guest@example.org"]
    assert EnrollmentAudit.objects.filter(course=course, identifier="guest@example.org", reason="Registered with another address").exists()

    # 8. The course's enrollment key, typed on the Settings tab.
    tabs.get_by_role("link", name="Settings").click()
    key = page.get_by_label("Enrollment key")
    expect(key).to_have_value("")
    key.fill("journey-2026")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("alert").filter(has_text="Settings saved. Enrollment key: set.")).to_be_visible()
    expect(page.get_by_label("Enrollment key")).to_have_value("journey-2026")
    expect(page.locator("#settings-history")).to_contain_text("Enrollment key: set")
    assert Course.objects.get(pk=course.pk).enrollment_key == "journey-2026"
