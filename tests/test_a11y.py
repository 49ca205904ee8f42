"""Accessibility (RGAA / WCAG 2.1 AA) in Debian's headless Chromium, measured by axe-core
(tests/a11y.py): every page of today's journeys, in each state reached (errors shown included), at
desktop width and at 320 px, has no serious or critical violation.

Served as in tests/test_e2e.py: werkzeug in a thread, a committed database of its own, CSRF on.
"""

from __future__ import annotations

import threading

import pytest
from werkzeug.serving import make_server

from instruction.extensions import db
from tests import factories
from tests.a11y import AXE_PATH, assert_accessible, run_axe
from tests.conftest import prepared_app, sibling_database_url
from tests.test_e2e import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 320, "height": 640}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is not installed: run `make test` (or `make browser-deps`).")
    app = prepared_app(sibling_database_url("a11y"), tmp_path_factory.mktemp("a11y"), WTF_CSRF_ENABLED=True)
    with app.app_context():
        agent = factories.user("applicant", collectivite=factories.commune("21001"),
                               email="secretariat@agencourt.exemple.fr", full_name="Claire Martin")
        world = {"agent": agent.email}
        db.session.commit()
        db.session.remove()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"base": f"http://127.0.0.1:{server.server_port}", **world}
    finally:
        server.shutdown()
        thread.join(timeout=10)
        with app.app_context():
            db.engine.dispose()


@pytest.fixture(scope="module")
def browser(served):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=DESKTOP, locale="fr-FR")
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        context.close()


# --- the helper itself ----------------------------------------------------------------------------


def test_the_csp_blocks_an_inline_script_tag_so_axe_is_evaluated(served, page):
    """Why tests/a11y.py evaluates axe instead of ``add_script_tag``: our CSP blocks the inline
    script Playwright would insert, and axe still runs on the page under its real policy."""
    from playwright.sync_api import Error

    response = page.goto(f"{served['base']}/connexion")
    assert "script-src 'self';" in response.headers["content-security-policy"]
    with pytest.raises(Error):
        page.add_script_tag(path=str(AXE_PATH))
    assert page.evaluate("() => typeof window.axe") == "undefined"
    results = run_axe(page)
    assert page.evaluate("() => typeof window.axe.run") == "function"
    assert isinstance(results["violations"], list)


def test_assert_accessible_lists_serious_violations_readably(page):
    """A page with grey-on-grey text and an unlabelled field fails with each rule's id, impact,
    element and help."""
    page.set_content(
        '<!doctype html><html lang="fr"><head><title>Essai</title></head><body><main>'
        '<h1>Essai</h1><p id="pale" style="color:#aaa;background:#fff">Texte trop pâle</p>'
        '<form><input type="text" id="sans-etiquette"></form></main></body></html>')
    with pytest.raises(AssertionError) as failure:
        assert_accessible(page, context="page d'essai")
    message = str(failure.value)
    assert message.startswith("page d'essai — ")
    assert "- color-contrast (serious): Elements must meet minimum color contrast ratio thresholds" in message
    assert "at #pale" in message
    assert "- label (critical):" in message
    assert "at #sans-etiquette" in message


def test_assert_accessible_passes_a_clean_page_and_ignores_minor_issues(page):
    # A missing main landmark is "moderate" (and not a WCAG A/AA rule): not a failure.
    page.set_content('<!doctype html><html lang="fr"><head><title>Essai</title></head><body>'
                     '<h1>Essai</h1><p>Texte lisible.</p></body></html>')
    assert_accessible(page, context="page propre")
