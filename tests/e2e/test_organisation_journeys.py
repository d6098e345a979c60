"""Browser journeys of organisation-based enrollment (system Chromium, live server):
an administrator creates a department, gives it a member, assigns a course with
a preview and a confirmation, and the member finds the course on their
dashboard; then an administrator imports an xlsx made from the template."""


import openpyxl
import pytest
from playwright.sync_api import Page, expect

from enrollments.models import Allowance, Enrollment
from organisations.models import OrgUnit, UnitKind
from tests.e2e.browser import log_in
from tests.e2e.test_journeys import shot
from tests.factories import CourseFactory, PlatformAdminFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]



def test_department_assignment_reaches_the_dashboard(page: Page, live_server):
    course = CourseFactory(display_name="Safety first")
    PlatformAdminFactory(username="admin")
    UserFactory(username="dana", first_name="Dana")
    log_in(page, live_server.url, "admin")
    page.goto(f"{live_server.url}/organisation/?kind=department")
    page.get_by_role("link", name="New department").click()
    page.get_by_label("Name").fill("Sales")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("link", name="Members").click()
    page.get_by_label("Usernames or emails").fill("dana")
    page.get_by_role("button", name="Add members").click()
    expect(page.locator("#add-preview")).to_contain_text("1 will be added")
    page.locator("#add-preview").get_by_role("button", name="Confirm").click()
    expect(page.locator("#members-remove")).to_contain_text("dana")
    page.get_by_role("link", name="Assign").click()
    page.get_by_label("Course", exact=True).select_option(str(course.pk))
    page.get_by_role("button", name="Preview", exact=True).click()
    expect(page.locator(".count-enroll")).to_have_text("1")
    expect(page.locator("#preview")).to_contain_text("Dana")
    assert not Enrollment.objects.exists()
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator("#assignments")).to_contain_text("Safety first")
    page.get_by_role("button", name="Log out").click()
    log_in(page, live_server.url, "dana")
    page.goto(f"{live_server.url}/")
    expect(page.locator("main")).to_contain_text("Safety first")


def test_import_from_template_with_one_bad_row(page: Page, live_server, tmp_path):
    course = CourseFactory(display_name="Forklift basics")
    PlatformAdminFactory(username="admin")
    UserFactory(username="erin", email="erin@example.com")
    log_in(page, live_server.url, "admin")
    page.goto(f"{live_server.url}/organisation/import/")
    page.get_by_label("Courses").select_option(str(course.pk))
    with page.expect_download() as download:
        page.get_by_role("button", name="Generate import template").click()
    template = tmp_path / "template.xlsx"
    download.value.save_as(template)
    wb = openpyxl.load_workbook(template)
    ws = wb.active
    ws.delete_rows(2)
    ws.append(["erin@example.com", "Erin", "", "", "", "", "", "en", "x"])
    ws.append(["not an email", "", "", "", "", "", "", "", "x"])
    ws.append(["newbie@example.com", "", "", "", "", "", "", "", "x"])
    filled = tmp_path / "filled.xlsx"
    wb.save(filled)
    page.get_by_label("Import file (.xlsx or UTF-8 .csv)").set_input_files(str(filled))
    page.get_by_role("button", name="Check file").click()
    expect(page.locator("#n-enrolled")).to_have_text("1")
    expect(page.locator("#n-allowances")).to_have_text("1")
    errors = page.locator("#import-errors")
    expect(errors).to_contain_text("3")
    expect(errors).to_contain_text("bad email")
    assert not Enrollment.objects.exists()
    page.get_by_role("button", name="Start import").click()
    expect(page.locator(".job-status")).to_have_text("Succeeded")
    expect(page.locator(".org-job .job-progress")).to_have_text("2 of 2 rows")
    expect(page.locator(".org-job .job-summary")).to_have_text("1 person updated, 1 enrollment made, 1 invitation created.")
    shot(page, "import-results-1280")
    page.set_viewport_size({"width": 390, "height": 900})
    shot(page, "import-results-390")
    with page.expect_download() as results:
        page.get_by_role("link", name="Download what happened to each row (CSV)").click()
    lines = open(results.value.path(), encoding="utf-8").read().splitlines()
    assert lines[0] == "row,email,what happened"
    assert lines[1] == f"2,erin@example.com,details updated; {course.key}: enrolled"
    assert lines[2] == "3,not an email,not imported: email: bad email 'not an email'"
    assert Enrollment.objects.filter(course=course, user__username="erin", is_active=True).exists()
    assert Allowance.objects.filter(course=course, email="newbie@example.com").exists()


@pytest.mark.parametrize("width", [1280, 390])
def test_adding_to_a_department_lists_each_persons_outcome(page: Page, live_server, width):
    PlatformAdminFactory(username="admin")
    sales = OrgUnit.objects.create(kind=UnitKind.DEPARTMENT, name="Sales")
    support = OrgUnit.objects.create(kind=UnitKind.DEPARTMENT, name="Support")
    UserFactory(username="ann", first_name="Ann", last_name="Lee", department=support)
    UserFactory(username="bob")
    log_in(page, live_server.url, "admin")
    page.set_viewport_size({"width": width, "height": 900})  # after logging in: the menu folds away on a phone
    page.goto(f"{live_server.url}/organisation/units/department/{sales.pk}/members/")
    expect(page.locator("#single-kind-note")).to_contain_text("moves them out of the one they are in now")
    page.get_by_label("Usernames or emails").fill("ann bob ghost")
    page.get_by_role("button", name="Add members").click()
    preview = page.locator("#add-preview")
    expect(preview).to_contain_text("1 will move from another department")
    expect(preview.get_by_role("row", name="ann")).to_contain_text("will move from Support")
    preview.get_by_role("button", name="Confirm").click()
    results = page.locator("#add-results")
    expect(results).to_be_in_viewport()
    expect(page.get_by_role("alert")).to_contain_text("1 added, 1 moved from another department, 1 with no active account")
    expect(results.get_by_role("row", name="ann")).to_contain_text("moved from Support")
    expect(results.get_by_role("row", name="bob")).to_contain_text("added")
    expect(results.get_by_role("row", name="ghost")).to_contain_text("no such user")
    expect(page.locator("#members-remove")).to_contain_text("Ann Lee")
    shot(page, f"department-add-results-{width}")
