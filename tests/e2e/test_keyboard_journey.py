"""The keyboard-only journey: no mouse from start to end.

An instructor enrolls a list, reads its results, generates codes and copies them; a learner
redeems one. Every step is Tab / Shift+Tab / Enter / Space (``page.keyboard`` only, never a
click); every control reached shows a visible focus, and after each submit the focus is on
the result or on the first error (``document.activeElement``)."""

import pytest
from playwright.sync_api import Locator, Page, expect

from courses.models import CourseRole
from enrollments.models import Enrollment
from tests.factories import CourseFactory, CourseRoleFactory, UserFactory

from .accessibility import assert_accessible
from .browser import PASSWORD
from .test_journeys import shot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MAX_TABS = 80  # more stops than any page here has before its main form


@pytest.fixture
def browser_context_args(browser_context_args):
    return {**browser_context_args, "permissions": ["clipboard-read", "clipboard-write"]}


def is_focused(target: Locator) -> bool:
    return target.evaluate("el => el === document.activeElement")


def focus_is_visible(page: Page) -> bool:
    """The focused element draws a focus ring: an outline or a box shadow (Bootstrap's)."""
    return page.evaluate(
        """() => {
          const el = document.activeElement;
          // Inside a date field the browser's own picker button can hold the focus (the field
          // then does not match :focus); the browser draws that ring itself.
          if (el.matches("input[type=date]") && !el.matches(":focus")) return true;
          const style = getComputedStyle(el);
          const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0;
          return outline || (style.boxShadow !== "" && style.boxShadow !== "none");
        }"""
    )


def tab_to(page: Page, target: Locator, *, backwards: bool = False) -> None:
    """Press Tab (or Shift+Tab) until ``target`` has the focus; each stop on the way shows it."""
    key = "Shift+Tab" if backwards else "Tab"
    for _ in range(MAX_TABS):
        page.keyboard.press(key)
        focused = page.evaluate("document.activeElement.outerHTML.slice(0, 120)")
        assert focus_is_visible(page), f"no visible focus on {focused}"
        if is_focused(target):
            return
    raise AssertionError(f"{MAX_TABS} × {key} never reached {target}")


def focused_id(page: Page) -> str:
    return page.evaluate("document.activeElement.id")


def assert_focus_on_first_error(page: Page, field_label: str) -> None:
    """The focus is on the first field in error (or on the error summary above the form)."""
    expect(page.locator(":focus")).to_have_count(1)
    state = page.evaluate(
        """() => {
          const el = document.activeElement;
          return {alert: el.getAttribute("role") === "alert", invalid: el.getAttribute("aria-invalid") === "true",
                  label: el.labels && el.labels.length ? el.labels[0].innerText : ""};
        }"""
    )
    assert state["alert"] or (state["invalid"] and field_label in state["label"]), state


def log_in_by_keyboard(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    tab_to(page, page.get_by_label("Login"))
    page.keyboard.type(username)
    page.keyboard.press("Tab")  # the password field follows the login
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def log_out_by_keyboard(page: Page) -> None:
    # Back up from the main content to the navigation bar above it.
    tab_to(page, page.get_by_role("button", name="Log out"), backwards=True)
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)


def test_enroll_read_results_generate_copy_and_redeem_by_keyboard(page: Page, live_server):
    course = CourseFactory(key="course-v1:Acme+KEY101+2026", display_name="Keyboard 101")
    CourseRoleFactory(course=course, role=CourseRole.Role.ADMIN, user=UserFactory(username="instructor"))
    UserFactory(username="alice", email="alice@example.com")
    UserFactory(username="learner")
    dashboard = f"{live_server.url}/courses/{course.key}/instructor/"

    log_in_by_keyboard(page, live_server.url, "instructor")

    # The skip link comes first and takes the keyboard past the navigation.
    page.goto(f"{dashboard}membership/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    assert is_focused(skip) and focus_is_visible(page)
    expect(skip).to_be_visible()

    # An empty list: the focus lands on the error, and nothing happened.
    tab_to(page, page.get_by_role("button", name="Enroll", exact=True))
    page.keyboard.press("Enter")
    expect(page.locator("#batch-errors, [aria-invalid=true]").first).to_be_visible()
    assert_focus_on_first_error(page, "Usernames or emails")

    # A list with a mistake in it: preview, then confirm; the focus follows to each result.
    identifiers = page.get_by_label("Usernames or emails")
    if not is_focused(identifiers):
        tab_to(page, identifiers)
    page.keyboard.type("alice, not-an-email@")
    tab_to(page, page.get_by_role("button", name="Enroll", exact=True))
    page.keyboard.press("Enter")
    expect(page.locator("#preview-heading")).to_be_visible()
    assert focused_id(page) == "preview-heading"
    assert_accessible(page)
    tab_to(page, page.get_by_role("button", name="Confirm: enroll"))
    page.keyboard.press("Space")
    results = page.locator("#batch-results")
    expect(results.get_by_role("heading", name="Results: enroll")).to_be_visible()
    assert focused_id(page) == "results-heading"
    # Reading the results: the failed row says so in words, not only in red.
    bad_row = results.locator("tbody tr", has_text="not-an-email@")
    expect(bad_row).to_contain_text("invalid email")
    sign = bad_row.locator("td").first.evaluate("td => getComputedStyle(td, '::before').content")
    assert "⚠" in sign, f"the error row has no sign besides its colour: {sign!r}"
    shot(page, "keyboard-batch-results")
    assert_accessible(page)
    expect(results.locator("tbody tr", has_text="alice")).to_contain_text("enrolled")
    # The batches' progress below is announced as it changes.
    expect(page.get_by_role("table").filter(has=page.get_by_role("columnheader", name="Progress")).locator("tbody")).to_have_attribute(
        "aria-live", "polite"
    )
    # Its links are reachable from the results, in reading order.
    tab_to(page, results.get_by_role("link", name="Download these results as CSV"))
    assert Enrollment.objects.filter(course=course, user__username="alice", is_active=True).exists()

    # Codes: a count out of range is refused with the focus on it; then three are generated and copied.
    page.goto(f"{dashboard}codes/")
    count = page.get_by_label("Number of codes")
    tab_to(page, count)
    page.keyboard.press("Control+A")
    page.keyboard.type("0")
    page.keyboard.press("Enter")
    expect(page.locator("#id_count.is-invalid")).to_be_visible()
    assert_focus_on_first_error(page, "Number of codes")
    page.keyboard.press("Control+A")
    page.keyboard.type("3")
    page.keyboard.press("Enter")
    generated = page.locator("#generated-codes")
    expect(generated).to_be_visible()
    assert focused_id(page) == "generated-heading"
    codes = generated.inner_text().split()
    assert len(codes) == 3
    shot(page, "keyboard-generated-codes")
    assert_accessible(page)
    tab_to(page, page.get_by_role("button", name="Copy all"))
    page.keyboard.press("Space")
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()").split() == codes
    log_out_by_keyboard(page)

    # The learner: a wrong code puts the focus on the field; the right one on the result.
    log_in_by_keyboard(page, live_server.url, "learner")
    tab_to(page, page.get_by_role("link", name="Redeem a code"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Redeem an enrollment code")).to_be_visible()
    code_field = page.get_by_label("Enrollment code")
    tab_to(page, code_field)
    page.keyboard.type("NOPE-NOPE-NOPE")
    page.keyboard.press("Enter")
    expect(page.locator("#id_code.is-invalid")).to_be_visible()
    assert_focus_on_first_error(page, "Enrollment code")
    page.keyboard.press("Control+A")
    page.keyboard.type(codes[0])
    page.keyboard.press("Enter")
    expect(page.locator("#redeem-result")).to_contain_text("Keyboard 101")
    assert focused_id(page) == "redeem-result"
    shot(page, "keyboard-redeemed")
    assert_accessible(page)
    # Shift+Tab walks back to the form from the link after the result.
    tab_to(page, page.get_by_role("link", name="Go to your current courses"))
    tab_to(page, page.get_by_role("link", name="Keyboard 101"), backwards=True)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Keyboard 101")).to_be_visible()
    assert Enrollment.objects.filter(course=course, user__username="learner", is_active=True).exists()
