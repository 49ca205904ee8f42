"""Accessibility (RGAA / WCAG 2.1 AA) in Debian's headless Chromium, measured by axe-core
(tests/a11y.py): every page of today's journeys, in each state reached (errors shown included), at
desktop width and at 320 px, has no serious or critical violation.

Served as in tests/test_e2e.py: werkzeug in a thread, a committed database of its own, CSRF on.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from instruction.extensions import db
from instruction.teamwork import services as team
from tests import factories
from tests.a11y import AXE_PATH, assert_accessible, run_axe
from tests.browser import DESKTOP, chromium, log_in, require_chromium, serving
from tests.conftest import prepared_app, sibling_database_url

pytestmark = pytest.mark.browser

PHONE = {"width": 320, "height": 640}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app with a world to visit: an agent of Agencourt with a draft (one line, one invoice)
    and a dossier under instruction with messages; an instructor; finance; an admin; a dossier of
    the CC de la Plaine Dijonnaise granted (its history has several rows) and one received."""
    require_chromium()
    app = prepared_app(sibling_database_url("a11y"), tmp_path_factory.mktemp("a11y"), WTF_CSRF_ENABLED=True)
    with app.app_context():
        commune = factories.commune("21001")
        agent = factories.user("applicant", collectivite=commune, email="secretariat@agencourt.exemple.fr",
                               full_name="Claire-Marie-Bernadette Martin-Villeneuve-de-Saint-Apollinaire")
        instructor = factories.user("instructor", full_name="Inès Moreau",
                                    email="ines.moreau@bourgognefranchecomte.exemple.fr")
        finance = factories.user("finance", full_name="Fabien Lefèvre",
                                 email="fabien.lefevre@bourgognefranchecomte.exemple.fr")
        admin = factories.user("admin", full_name="Anne Admin", email="anne.admin@bourgognefranchecomte.exemple.fr")
        draft = factories.dossier("draft", aid=1, collectivite=commune)
        # A long unbroken word: the layout must wrap it, at 320 px too.
        draft.title = "Ordinateur du secrétariat " + "intercommunalisation" * 5
        asked = factories.dossier("incomplete", aid=1, collectivite=commune)
        received = factories.dossier("received", aid=2)
        granted = factories.dossier("granted", aid=2)
        team.post_message(asked, agent, "Voici la facture signée, avec le devis du prestataire.", [], max_bytes=10_000_000,
                          now=factories.NOW)
        team.create_label(admin, "Prêt pour la commission", "success", now=factories.NOW)
        world = {"agent": agent.email, "instructor": instructor.email, "finance": finance.email,
                 "admin": admin.email, "draft": draft.id, "asked": asked.id, "received": received.id,
                 "granted": granted.id, "epci": "200000925", "commune": commune.id}
        db.session.commit()
        db.session.remove()
    with serving(app) as base:
        yield {"base": base, **world}


@pytest.fixture(scope="module")
def browser(served):

    with chromium() as launched:
        yield launched


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


# --- every page of today's journeys ---------------------------------------------------------------


def signed_in(browser, base: str, email: str, *, second_factor: bool = False):
    context = browser.new_context(viewport=DESKTOP, locale="fr-FR")
    page = context.new_page()
    page.set_default_timeout(15_000)
    log_in(page, base, email)
    if second_factor:
        page.get_by_label("Code").fill(factories.totp_code())
        page.get_by_role("button", name="Valider").click()
    page.wait_for_load_state()
    return page


# How far the page scrolls sideways, and the outermost elements that stick out of the viewport
# (those inside a scrolling container of their own do not count).
SIDEWAYS = """() => {
    const width = document.documentElement.clientWidth;
    const by = document.documentElement.scrollWidth - width;
    const culprits = [];
    if (by > 0) {
        for (const el of document.body.querySelectorAll("*")) {
            if (el.getBoundingClientRect().right <= width + 1) continue;
            let inner = false;
            for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
                const style = getComputedStyle(p);
                if (["auto", "scroll", "hidden"].includes(style.overflowX) || p.getBoundingClientRect().right > width + 1) {
                    inner = true; break;
                }
            }
            if (!inner) culprits.push(el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
                + (el.className && typeof el.className === "string" ? "." + el.className.trim().split(/\\s+/).join(".") : ""));
        }
    }
    return {by, culprits: culprits.slice(0, 5)};
}"""


def check_both_widths(page, context: str, failures: list[str]) -> None:
    """axe at desktop width then at 320 px (the same state: no reload), collecting failures."""
    for name, size in (("bureau", DESKTOP), ("320 px", PHONE)):
        page.set_viewport_size(size)
        try:
            assert_accessible(page, context=f"{context} ({name})")
        except AssertionError as failure:
            failures.append(str(failure))
        if name == "320 px":
            overflow = page.evaluate(SIDEWAYS)
            if overflow["by"] > 0:
                failures.append(f"{context} (320 px): the page scrolls sideways by {overflow['by']} px, "
                                f"because of: {', '.join(overflow['culprits'])}")
    page.set_viewport_size(DESKTOP)


def visit(page, url: str, context: str, failures: list[str]) -> None:
    response = page.goto(url)
    assert response.status < 500, f"{context}: {response.status}"
    check_both_widths(page, context, failures)


def assert_summary_focused_and_linked(page) -> None:
    """After a failed submit the error summary has the focus; its first link moves the focus to
    the field it names."""
    focused = page.evaluate("() => document.activeElement.hasAttribute('data-error-summary')")
    assert focused, page.evaluate("() => document.activeElement.outerHTML.slice(0, 200)")
    link = page.locator("[data-error-summary] a").first
    target = link.get_attribute("href").removeprefix("#")
    link.click()
    assert page.evaluate("() => document.activeElement.id") == target
    page.keyboard.press("Shift+Tab")  # the keyboard goes on from there (the focus is not stuck)


def test_anonymous_pages(served, browser, monkeypatch):
    monkeypatch.setattr("instruction.clock.now", lambda: factories.NOW)
    base, failures = served["base"], []
    page = browser.new_context(viewport=DESKTOP, locale="fr-FR").new_page()
    visit(page, f"{base}/connexion", "connexion", failures)
    page.get_by_label("Adresse électronique").fill(served["agent"])
    page.get_by_label("Mot de passe").fill("pas le bon mot de passe")
    page.get_by_role("button", name="Se connecter").click()
    check_both_widths(page, "connexion, erreur affichée", failures)
    visit(page, f"{base}/inscription", "inscription", failures)
    visit(page, f"{base}/inscription?q=Agencourt", "inscription, recherche", failures)
    visit(page, f"{base}/inscription?collectivite={served['commune']}", "inscription, collectivité choisie", failures)
    page.get_by_role("button", name="Créer mon compte").click()
    check_both_widths(page, "inscription, erreurs affichées", failures)
    assert_summary_focused_and_linked(page)
    visit(page, f"{base}/mot-de-passe-oublie", "mot de passe oublié", failures)
    visit(page, f"{base}/page-qui-n-existe-pas", "page introuvable", failures)
    visit(page, f"{base}/mentions-legales", "mentions légales", failures)
    visit(page, f"{base}/donnees-personnelles", "données personnelles", failures)
    visit(page, f"{base}/accessibilite", "déclaration d'accessibilité", failures)
    assert not failures, "\n\n".join(failures)


def test_portal_pages(served, browser, monkeypatch):
    monkeypatch.setattr("instruction.clock.now", lambda: factories.NOW)
    base, failures = served["base"], []
    page = signed_in(browser, base, served["agent"])
    visit(page, f"{base}/portail/", "portail, mes dossiers", failures)
    visit(page, f"{base}/portail/dossiers/{served['draft']}", "portail, brouillon", failures)
    page.get_by_role("button", name="Enregistrer la dépense").click()
    check_both_widths(page, "portail, dépense en erreur", failures)
    assert_summary_focused_and_linked(page)
    visit(page, f"{base}/portail/dossiers/{served['asked']}", "portail, compléments demandés, messages", failures)
    page.get_by_role("button", name="Envoyer le message").click()
    check_both_widths(page, "portail, message vide refusé", failures)
    visit(page, f"{base}/notifications/", "notifications du demandeur", failures)
    visit(page, f"{base}/compte/", "mon compte", failures)
    assert not failures, "\n\n".join(failures)


def test_backoffice_pages(served, browser, monkeypatch):
    monkeypatch.setattr("instruction.clock.now", lambda: factories.NOW)
    base, failures = served["base"], []
    page = signed_in(browser, base, served["instructor"])
    visit(page, f"{base}/", "accueil instructeur", failures)
    visit(page, f"{base}/instruction/", "file des dossiers", failures)
    visit(page, f"{base}/instruction/?etat=received", "file des dossiers filtrée", failures)
    visit(page, f"{base}/instruction/dossiers/{served['granted']}", "dossier attribué, historique", failures)
    visit(page, f"{base}/instruction/dossiers/{served['received']}", "dossier reçu", failures)
    page.locator('form[data-action="refuse"]').get_by_role("button").click()
    check_both_widths(page, "dossier reçu, refus sans motif", failures)
    assert_summary_focused_and_linked(page)
    visit(page, f"{base}/instruction/epci/{served['epci']}", "enveloppes de l'EPCI", failures)
    visit(page, f"{base}/instruction/commission/", "commission permanente", failures)
    visit(page, f"{base}/instruction/preferences", "préférences", failures)
    visit(page, f"{base}/tableau-de-bord", "tableau de bord", failures)
    visit(page, f"{base}/instruction/exports/", "exports", failures)
    visit(page, f"{base}/notifications/", "notifications de l'instructeur", failures)
    finance = signed_in(browser, base, served["finance"])
    visit(finance, f"{base}/", "accueil finances", failures)
    visit(finance, f"{base}/instruction/dossiers/{served['granted']}", "dossier attribué, versement", failures)
    payment = finance.locator('form[data-action="record_payment"]')
    payment.locator("summary").click()
    payment.get_by_role("button", name="Confirmer le versement").click()
    check_both_widths(finance, "versement en erreur", failures)
    assert not failures, "\n\n".join(failures)


def test_admin_pages(served, browser, monkeypatch):
    monkeypatch.setattr("instruction.clock.now", lambda: factories.NOW)
    base, failures = served["base"], []
    page = signed_in(browser, base, served["admin"], second_factor=True)
    for path, context in (("/administration/", "administration"), ("/administration/comptes", "comptes"),
                          ("/administration/personnes", "personnes"), ("/administration/territoire", "territoire"),
                          (f"/administration/territoire/{served['commune']}", "collectivité"),
                          ("/administration/campagnes", "campagnes"), ("/administration/identite", "identité"),
                          ("/administration/journal", "journal"), ("/administration/etiquettes/", "étiquettes"),
                          ("/administration/territoire/sivos/nouveau", "nouveau SIVOS")):
        visit(page, base + path, context, failures)
    visit(page, f"{base}/administration/personnes", "personnes", failures)
    page.get_by_role("button", name="Envoyer l'invitation").click()
    check_both_widths(page, "invitation en erreur", failures)
    visit(page, f"{base}/administration/territoire/sivos/nouveau", "nouveau SIVOS", failures)
    page.locator("main form[method=post] [type=submit]").last.click()
    check_both_widths(page, "nouveau SIVOS en erreur", failures)
    visit(page, f"{base}/administration/identite", "identité", failures)
    page.get_by_label("Adresse électronique").fill("")
    page.locator("main form[method=post] [type=submit]").last.click()
    check_both_widths(page, "identité en erreur", failures)
    assert not failures, "\n\n".join(failures)


def test_the_keyboard_focus_is_visible_on_the_navigation_links(served, browser, monkeypatch):
    """Tabbing from the top reaches the skip link, the brand, then the navigation links; each
    focused element shows a thick outline (3 px) in the focus colour, on the dark bar too."""
    monkeypatch.setattr("instruction.clock.now", lambda: factories.NOW)
    page = signed_in(browser, served["base"], served["instructor"])
    page.goto(f"{served['base']}/instruction/")
    seen = []
    for _ in range(5):
        page.keyboard.press("Tab")
        seen.append(page.evaluate("""() => {
            const el = document.activeElement, style = getComputedStyle(el);
            return {text: el.textContent.trim(), outline: style.outlineStyle + " " + style.outlineWidth,
                    colour: style.outlineColor, inNav: !!el.closest("nav.navbar")};
        }"""))
    assert [s["text"] for s in seen[:3]] == ["Aller au contenu", "Aides numériques BFC", "Dossiers"]
    for focused in seen[1:]:
        assert focused["outline"] == "solid 3px", focused
        assert focused["colour"] == "rgb(255, 191, 71)", focused  # #ffbf47: 9.8:1 on the bar's blue
    assert all(s["inNav"] for s in seen[1:])


NAVIGATION_LINES = """() => {
    const lines = el => {
        const style = getComputedStyle(el);
        const content = el.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);
        return Math.round(content / parseFloat(style.lineHeight));
    };
    const links = [...document.querySelectorAll("nav.navbar .navbar-nav .nav-link")];
    const user = document.querySelector("[data-testid=current-user]");
    const toggler = document.querySelector("nav.navbar .navbar-toggler");
    return {entries: links.map(lines), user: user.offsetParent ? lines(user) : 0,
            title: user.getAttribute("title"), collapsed: getComputedStyle(toggler).display !== "none"};
}"""


@pytest.mark.parametrize("who, second_factor", [("admin", True), ("agent", False)])
def test_the_navigation_bar_keeps_each_entry_and_the_name_on_one_line(served, browser, monkeypatch, who,
                                                                       second_factor):
    """At 1280 px the admin's eight entries wrap as whole entries, and the person's name stays on one
    line (cut if very long, whole in its title); narrower, the staff's menu folds behind its button.
    A day after the other tests: the admin's second factor refuses a code already used."""
    monkeypatch.setattr("instruction.clock.now", lambda: factories.NOW + timedelta(days=1))
    page = signed_in(browser, served["base"], served[who], second_factor=second_factor)
    bar = page.evaluate(NAVIGATION_LINES)
    assert not bar["collapsed"] and bar["user"] == 1 and set(bar["entries"]) == {1}, bar
    if who == "agent":
        assert bar["title"] == ("Mon compte : Claire-Marie-Bernadette Martin-Villeneuve-de-Saint-Apollinaire"
                                " · Demandeur · Agencourt")
    page.set_viewport_size({"width": 1024, "height": 900})
    assert page.evaluate(NAVIGATION_LINES)["collapsed"] is (who == "admin")
