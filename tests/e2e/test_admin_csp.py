"""The Django admin works under the site's strict Content Security Policy.

The admin is not ours to lay out, but a platform administrator uses it: every model's
list, add form and first change form are opened (which runs the admin's scripts: date
and time shortcuts, two-box selects, inlines, the sidebar), and a calendar and an
autocomplete (Select2) are opened, so any inline script or style the admin relies on
shows up as a violation (the `_no_csp_violations` fixture in conftest fails the test)."""

import pytest
from django.core.management import call_command
from playwright.sync_api import Page, expect

from .browser import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_every_admin_list_and_form_runs_under_the_policy(page: Page, live_server):
    call_command("seed_demo", verbosity=0)
    base = live_server.url
    log_in(page, base, "admin", password="admin")

    page.goto(f"{base}/admin/")
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
    changelists = page.eval_on_selector_all("#content-main th[scope=row] a[href]", "links => links.map(a => a.href)")
    assert len(changelists) > 5, "the admin index lists no models"
    opened_a_calendar = opened_an_autocomplete = False
    for changelist in changelists:
        page.goto(changelist)
        # Its add form and its first object's change form (the sidebar has add links too: not those).
        forms = page.eval_on_selector_all("#content-main a.addlink[href]", "links => links.map(a => a.href)")[:1]
        forms += page.eval_on_selector_all("#result_list th a[href]", "links => links.map(a => a.href)")[:1]
        for form in forms:
            page.goto(form)
            calendar = page.locator("a[id^=calendarlink]").first
            if not opened_a_calendar and calendar.count():
                calendar.click()
                expect(page.locator(".calendarbox").first).to_be_visible()
                opened_a_calendar = True
            autocomplete = page.locator(".select2-selection").first
            if not opened_an_autocomplete and autocomplete.count():
                autocomplete.click()
                expect(page.locator(".select2-results").first).to_be_visible()
                page.keyboard.press("Escape")
                opened_an_autocomplete = True
    assert opened_a_calendar, "no admin form had a date field: the calendar shortcut went untested"
    assert opened_an_autocomplete, "no admin form had an autocomplete field: Select2 went untested"
