"""Browser journeys run on the system Chromium (Playwright cannot download browsers here)."""

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from .accessibility import CONSOLE_PREFIX, install_axe


@pytest.fixture(scope="session")
def browser_type_launch_args():
    return {
        "executable_path": "/usr/bin/chromium",
        "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        "headless": True,
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    # Without transitions, axe never measures the contrast of a half-faded modal or alert.
    return {**browser_context_args, "reduced_motion": "reduce"}


@pytest.fixture(autouse=True)
def _links_in_emails_point_at_the_live_server(settings, live_server):
    # Emails link to SITE_URL (never to the request's Host); here that is the test's server.
    settings.SITE_URL = live_server.url


@pytest.fixture(autouse=True)
def _quick_failures(page):
    # A missing element should fail in seconds, not after Playwright's 30 s default.
    page.set_default_timeout(15_000)
    expect.set_options(timeout=15_000)


@pytest.fixture(autouse=True)
def _no_broken_assets(page):
    """Every stylesheet and script the pages ask for must load (no CDN, no 404)."""
    broken = []
    page.on("response", lambda r: broken.append(f"{r.status} {r.url}") if "/static/" in r.url and r.status >= 400 else None)
    # A request the browser aborts because the page navigated on (net::ERR_ABORTED) is not a broken asset.
    page.on(
        "requestfailed",
        lambda r: broken.append(f"failed {r.url}: {r.failure}")
        if r.resource_type in ("stylesheet", "script") and "ERR_ABORTED" not in (r.failure or "")
        else None,
    )
    yield
    assert not broken, f"assets that did not load: {broken}"


# Every page also reports its own violations to the console, so the check below sees them even
# where Chromium would not log one (a violation in a page that navigates away at once).
_REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error(`Content Security Policy violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
});
"""


@pytest.fixture(autouse=True)
def _no_csp_violations(page):
    """No page breaks under the enforced Content Security Policy: any violation fails the journey."""
    violations = []
    page.add_init_script(_REPORT_CSP_VIOLATIONS)
    page.on("console", lambda m: violations.append(f"{page.url}: {m.text}") if "Content Security Policy" in m.text else None)
    yield
    assert not violations, "Content Security Policy violations:\n" + "\n".join(violations)


@pytest.fixture(autouse=True)
def _accessible_pages(page):
    """Every page a journey shows, after each load and each htmx swap, passes axe-core's WCAG 2.1 AA
    rules with no serious or critical violation (tests/e2e/accessibility.py)."""
    install_axe(page)
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if m.text.startswith(CONSOLE_PREFIX) else None)
    yield
    try:
        page.evaluate("window.__axeResult ? window.__axeResult() : []")  # the last page's check, to its end
    except PlaywrightError:
        pass  # the page is gone or mid-navigation: nothing more to check
    unique = list(dict.fromkeys(violations))
    assert not unique, "accessibility violations (axe-core, WCAG 2.1 AA):\n" + "\n".join(unique)
