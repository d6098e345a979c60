"""Browser journeys run on the system Chromium (Playwright cannot download browsers here)."""

import pytest
from playwright.sync_api import expect


@pytest.fixture(scope="session")
def browser_type_launch_args():
    return {
        "executable_path": "/usr/bin/chromium",
        "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        "headless": True,
    }


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
