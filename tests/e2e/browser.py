"""Steps the browser journeys share."""

import re

from playwright.sync_api import Page, expect

PASSWORD = "pass-word-123"  # the factories' password


def log_in(page: Page, base_url: str, username: str, password: str = PASSWORD) -> None:
    """Log in through the login page, as a person would, and wait until it took."""
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Login").fill(username)
    page.get_by_label(re.compile(r"^\s*Password\s*\*?\s*$")).fill(password)
    page.get_by_role("button", name="Sign In").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
