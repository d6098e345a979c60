"""axe-core in the browser tests: no page breaks WCAG 2.1 AA with a serious or critical violation.

The app never loads axe (no template names it); the tests inject the vendored copy into every
document of the page, before the page's own scripts, and a small runner checks the document
after each load and after each htmx swap, reporting what it finds to the console, where the
``_accessible_pages`` fixture of conftest collects it. A page the journey leaves before its check
finished goes unchecked there, which is why the crawl (test_phone_width.py) calls
``axe_violations`` explicitly on every page it reaches, as each persona.

Two checks of our own ride along, as axe has no rule for them: a job's polled progress sits
inside an aria-live region (so its updates are announced), and every help text under a field is
linked to the field by aria-describedby."""

import json
from pathlib import Path

from playwright.sync_api import Page

AXE_JS = Path(__file__).resolve().parents[2] / "static" / "vendor" / "axe" / "axe.min.js"
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
FAILING_IMPACTS = ("serious", "critical")
CONSOLE_PREFIX = "axe violation:"
# Not our markup: Django's admin and the Swagger UI of the API docs are laid out by their
# projects (the phone-width crawl skips them too).
NOT_OURS = ["/admin/", "/api/"]

# One check at a time (axe refuses to start while it runs); swaps that land during a check are
# checked once more after it. Each violation goes to the console as one line naming the rule,
# its impact, the page and the first few elements, which is what a failure message needs.
_RUNNER = """
(() => {
  if (window.__axeCheck || !window.axe) return;
  if (%(not_ours)s.some((prefix) => location.pathname.startsWith(prefix))) return;
  const options = {runOnly: {type: "tag", values: %(tags)s}, resultTypes: ["violations"]};
  const failing = %(impacts)s;
  let running = Promise.resolve([]), again = false, busy = false, stale = true, last = [];
  const describe = (v) => `${v.id} (${v.impact}) at ${location.pathname}${location.search}: ${v.help}: ` +
    v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(" | ");
  // Two checks axe has no rule for, reported the same way.
  const where = (el) => el.id ? `#${el.id}` : el.tagName.toLowerCase() + (el.className ? "." + [...el.classList].join(".") : "");
  const ourChecks = () => {
    const found = [];
    // A job's progress, polled by htmx, is announced: its element sits inside a live region
    // that stays while the polled part is swapped, or beside one that announces it (the
    // membership preview's "Previewing…", then "The preview is ready").
    const live = "[aria-live], [role=status], [role=log]";
    const silent = [...document.querySelectorAll("[hx-trigger*='every']")]
      .filter((el) => !el.parentElement.closest(live) && ![...el.parentElement.querySelectorAll(live)].some((r) => !el.contains(r)));
    if (silent.length) found.push({id: "polled-progress-live", impact: "serious",
      help: "Polled progress must be inside an aria-live region", nodes: silent.map((el) => ({target: [where(el)]}))});
    // Help text under a field is read with it: some control names it in aria-describedby.
    const unlinked = [...document.querySelectorAll(".form-text")]
      .filter((help) => !help.id || !document.querySelector(`[aria-describedby~="${CSS.escape(help.id)}"]`));
    if (unlinked.length) found.push({id: "help-text-described-by", impact: "serious",
      help: "Help text must be linked to its field by aria-describedby", nodes: unlinked.map((el) => ({target: [where(el)]}))});
    return found;
  };
  window.__axeCheck = () => {
    if (busy) { again = true; return running; }
    busy = true;
    stale = false;
    running = axe.run(document, options).then((results) => {
      const found = results.violations.filter((v) => failing.includes(v.impact)).concat(ourChecks());
      found.forEach((v) => console.error("%(prefix)s " + describe(v)));
      last = found.map(describe);
      return last;
    }).finally(() => {
      busy = false;
      if (again) { again = false; return window.__axeCheck(); }
    });
    return running;
  };
  // The latest result, checking again only when the document changed since (or never was checked).
  window.__axeResult = async () => {
    await running;
    return stale ? window.__axeCheck() : last;
  };
  new MutationObserver(() => { stale = true; }).observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
  window.addEventListener("load", () => window.__axeCheck());
  document.addEventListener("htmx:afterSettle", () => window.__axeCheck());
})();
"""


def _runner_js() -> str:
    return _RUNNER % {
        "tags": json.dumps(WCAG_21_AA),
        "impacts": json.dumps(list(FAILING_IMPACTS)),
        "prefix": CONSOLE_PREFIX,
        "not_ours": json.dumps(NOT_OURS),
    }


def install_axe(page: Page) -> None:
    """Inject axe and the runner into every document this page loads from now on."""
    page.add_init_script(path=str(AXE_JS))
    page.add_init_script(_runner_js())


def axe_violations(page: Page) -> list[str]:
    """Check the page as it is now; return one line per serious or critical WCAG 2.1 AA violation."""
    if not page.evaluate("typeof window.__axeResult === 'function'"):
        # A document loaded before install_axe: inject by hand (evaluate, as the enforced CSP
        # would block the inline script tag of add_script_tag).
        page.evaluate(AXE_JS.read_text())
        page.evaluate(_runner_js())
    return page.evaluate("window.__axeResult()")


def assert_accessible(page: Page) -> None:
    """Fail with the violations' lines when the page as it is now has any."""
    violations = axe_violations(page)
    assert not violations, f"accessibility violations on {page.url}:\n" + "\n".join(violations)
