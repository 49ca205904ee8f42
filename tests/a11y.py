"""Accessibility checks for the browser tests: axe-core (the npm package pinned in package-lock.json,
installed by ``make install`` / ``make browser-deps`` into node_modules/) run inside a Playwright page.

    from tests.a11y import assert_accessible
    assert_accessible(page, context="portail — nouveau dossier, erreurs affichées")

It fails with one line per serious or critical violation (rule id, impact, CSS target, help) under
the WCAG 2.0 and 2.1 levels A and AA rules (the RGAA's reference).

How axe gets into the page: our CSP (``script-src 'self'``) forbids inline scripts, and Playwright's
``page.add_script_tag(path=...)`` inserts the file's text as an inline ``<script>``, which Chromium
blocks (checked in tests/test_a11y.py). ``bypass_csp=True`` would need every caller's browser
context to be made for it and would test the page under a policy it never has in production. So the
file is evaluated through the DevTools protocol (``page.evaluate``), which a page's CSP does not
govern: the page keeps its real policy, and any page object works as it is.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from instruction import PROJECT_ROOT

AXE_PATH = PROJECT_ROOT / "node_modules" / "axe-core" / "axe.min.js"
WCAG_AA_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING_IMPACTS = ("serious", "critical")


@cache
def axe_source() -> str:
    if not AXE_PATH.exists():
        raise AssertionError(
            f"axe-core is not installed ({AXE_PATH} is missing): run `make browser-deps` (npm ci).")
    return AXE_PATH.read_text(encoding="utf-8")


def run_axe(page: Any, tags: list[str] | None = None) -> dict:
    """The axe results (``violations``, ``passes``, …) of the page as it is now."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        # The trailing expression makes evaluate return nothing heavy; axe defines window.axe.
        page.evaluate(axe_source() + "\n;void 0")
    return page.evaluate(
        """async (tags) => {
            const results = await window.axe.run(document, {
                runOnly: {type: "tag", values: tags},
                resultTypes: ["violations"],
            });
            return {
                url: results.url,
                violations: results.violations.map(v => ({
                    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                    nodes: v.nodes.map(n => ({
                        impact: n.impact, target: n.target.map(String).join(" "),
                        summary: n.failureSummary || "",
                    })),
                })),
            };
        }""",
        tags or WCAG_AA_TAGS,
    )


def blocking_violations(results: dict) -> list[dict]:
    """The serious and critical violations of axe's results."""
    return [v for v in results["violations"] if v["impact"] in BLOCKING_IMPACTS]


def describe(violations: list[dict]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"- {violation['id']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"][:10]:
            detail = " ".join(node["summary"].split())[:300]
            lines.append(f"    at {node['target']}" + (f" — {detail}" if detail else ""))
        if len(violation["nodes"]) > 10:
            lines.append(f"    … and {len(violation['nodes']) - 10} more elements")
    return "\n".join(lines)


def assert_accessible(page: Any, context: str = "") -> None:
    """Fail when axe finds a serious or critical WCAG 2.0/2.1 A/AA violation on the page."""
    results = run_axe(page)
    blocking = blocking_violations(results)
    if blocking:
        where = f"{context} — " if context else ""
        raise AssertionError(
            f"{where}{results['url']}: {len(blocking)} serious/critical accessibility "
            f"violation(s) (axe-core, WCAG 2.1 AA):\n{describe(blocking)}")


def confirm_step(page: Any, testid: str, confirm: str) -> None:
    """Go through a confirmation step (templates/_forms.html ``confirm_step``, the back office's
    grant and payment): open it unless it is open already (it stays open after a refusal), then
    click its confirm button. E.g. ``confirm_step(page, "submit-step", "Confirmer le dépôt")``,
    ``confirm_step(page, "grant-step", "Confirmer l'attribution")``,
    ``confirm_step(page, "payment-step", "Confirmer le versement")``."""
    details = page.get_by_test_id(testid)
    if details.get_attribute("open") is None:
        details.locator("summary").click()
    details.get_by_role("button", name=confirm).click()
