"""End to end, in Debian's headless Chromium: an agent logs in, creates a draft, declares a line,
attaches a PDF, submits, and sees "Reçu"; an instructor declares a dossier eligible, grants it
and sees its envelope consumed.

The app is served by werkzeug in a thread against a committed database of its own (not the
per-test transaction), with CSRF on as in production. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import pytest

from instruction.extensions import db
from tests import factories
from tests.a11y import confirm_step
from tests.browser import ARTIFACTS, DESKTOP, chromium, log_in, require_chromium, serving
from tests.conftest import prepared_app, sibling_database_url

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app served on a free port: its base URL, the e-mail of a confirmed agent of Agencourt,
    the e-mail of an instructor and the id of a received dossier of the CC de la Plaine
    Dijonnaise (aid 2, 10,000 € HT)."""
    require_chromium()
    app = prepared_app(sibling_database_url("e2e"), tmp_path_factory.mktemp("e2e"), WTF_CSRF_ENABLED=True)
    with app.app_context():
        agent = factories.user("applicant", collectivite=factories.commune("21001"),
                               email="secretariat@agencourt.exemple.fr", full_name="Claire Martin")
        instructor = factories.user("instructor", full_name="Inès Moreau")
        dossier = factories.dossier("received", aid=2)
        world = {"email": agent.email, "instructor": instructor.email, "dossier": dossier.id}
        db.session.commit()
        db.session.remove()
    with serving(app) as base:
        yield {"base": base, **world}


@pytest.fixture
def browser_page(served, monkeypatch):
    monkeypatch.setattr("instruction.clock.now", lambda: factories.NOW)  # inside the demo campaign
    with chromium() as browser:
        page = browser.new_page(viewport=DESKTOP, locale="fr-FR")
        page.set_default_timeout(15_000)
        yield page


def test_an_agent_submits_a_dossier(served, browser_page, tmp_path):
    from playwright.sync_api import expect

    base, email = served["base"], served["email"]
    page = browser_page
    ARTIFACTS.mkdir(exist_ok=True)
    invoice = tmp_path / "facture-ordinateur.pdf"
    invoice.write_bytes(factories.pdf_bytes("Facture ordinateur"))

    log_in(page, base, email)
    expect(page.get_by_role("heading", name="Agencourt", exact=True)).to_be_visible()
    aid1 = page.locator('[data-testid="aid-1"]')
    expect(aid1.get_by_text("Éligible", exact=True)).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "portal-home.png"), full_page=True)

    aid1.get_by_label("Intitulé du projet (facultatif)").fill("Ordinateur du secrétariat")
    aid1.get_by_role("button", name="Créer un dossier").click()
    expect(page.get_by_role("heading", name="Ordinateur du secrétariat")).to_be_visible()

    page.get_by_label("Catégorie de dépense").select_option(label="Équipement")
    page.get_by_label("Montant HT en euros").fill("1 200,00")
    page.get_by_label("Description de la dépense").fill("Ordinateur portable et écran")
    page.get_by_label("Pack", exact=True).select_option(index=1)
    live = page.locator("[data-estimation-live]")
    expect(live).to_contain_text("1\u00a0000,00\u00a0€")  # the live estimation, before saving
    page.get_by_role("button", name="Enregistrer la dépense").click()
    expect(page.get_by_text("Dépense enregistrée.")).to_be_visible()

    page.get_by_label("Factures ou devis pour la dépense n°1").set_input_files(str(invoice))
    page.get_by_role("button", name="Joindre").click()
    expect(page.get_by_role("link", name="facture-ordinateur.pdf", exact=True)).to_be_visible()
    expect(page.get_by_test_id("ready")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "portal-draft.png"), full_page=True)

    confirm_step(page, "submit-step", "Confirmer le dépôt")
    expect(page.get_by_test_id("state")).to_have_text("Reçu")
    expect(page.get_by_text("Votre dossier est déposé")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "portal-submitted.png"), full_page=True)


def test_an_instructor_declares_eligible_and_grants(served, browser_page):
    from playwright.sync_api import expect

    base, page = served["base"], browser_page
    log_in(page, base, served["instructor"])

    page.goto(f"{base}/instruction/")
    row = page.get_by_role("row").filter(has_text="CC de la Plaine Dijonnaise")
    row.get_by_role("link").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Reçu")
    page.get_by_role("button", name="Déclarer éligible").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Éligible")

    amount = page.get_by_label("Montant attribué (€ HT)")
    expect(amount).to_have_value("4000,00")
    confirm_step(page, "grant-step", "Confirmer l'attribution")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Attribué")
    envelope = page.locator("section", has=page.get_by_role("heading", name="Enveloppe"))
    expect(envelope).to_contain_text("26\u00a0000,00\u00a0€")  # 30,000 − 4,000 left
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "backoffice-granted.png"), full_page=True)
