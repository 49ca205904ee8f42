"""End to end, in Debian's headless Chromium: an agent asks for the balance of a 4,000.00 € grant
(aid 2, 40 %) with two paid invoices (6,000.00 + 2,500.00 € HT: 3,400.00 € payable); finance
pays it from the tab of payment requests, confirms the balance below the grant, and the envelope
gets back 600.00 €."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from instruction.dossiers.models import Dossier, Envelope
from instruction.extensions import db
from tests import factories
from tests.browser import ARTIFACTS, DESKTOP, chromium, log_in, require_chromium, serving
from tests.conftest import prepared_app, sibling_database_url

pytestmark = pytest.mark.browser

TODAY = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)  # three days after the grant (28 November 2026)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app on a free port, with a granted dossier (4,000.00 €) of the CC de la Plaine Dijonnaise."""
    require_chromium()
    tmp = tmp_path_factory.mktemp("e2e_payment_requests")
    app = prepared_app(sibling_database_url("e2e_payment_requests"), tmp, WTF_CSRF_ENABLED=True)
    with app.app_context():
        epci = factories.epci()
        agent = factories.user("applicant", collectivite=epci, email="finances@plaine-dijonnaise.exemple.fr",
                               full_name="Léa Bernard")
        finance = factories.user("finance", email="paierie@region.exemple.fr", full_name="Marc Petit")
        dossier = factories.dossier("granted", aid=2, collectivite=epci)
        world = {"agent": agent.email, "finance": finance.email, "dossier": dossier.id,
                 "reference": dossier.reference}
        db.session.commit()
        db.session.remove()
    invoices = []
    for name, label in (("facture-serveur.pdf", "Serveur"), ("facture-onduleur.pdf", "Onduleur")):
        path = tmp / name
        path.write_bytes(factories.pdf_bytes(f"Facture acquittee {label}"))
        invoices.append(path)
    with serving(app) as base:
        yield {"base": base, "app": app, "invoices": invoices, **world}


def test_an_agent_asks_for_the_balance_and_finance_pays_it(served, monkeypatch):
    from playwright.sync_api import expect

    monkeypatch.setattr("instruction.clock.now", lambda: TODAY)
    base = served["base"]
    with chromium() as browser:
        agent = browser.new_page(viewport=DESKTOP, locale="fr-FR")
        agent.set_default_timeout(20_000)
        log_in(agent, base, served["agent"])
        agent.goto(f"{base}/portail/dossiers/{served['dossier']}")
        expect(agent.get_by_test_id("payment-request")).to_contain_text("au plus tard le 28 novembre 2028")
        agent.get_by_role("link", name="Demander un versement").click()
        agent.get_by_label("Solde").check()
        agent.get_by_role("button", name="Commencer la demande de versement").click()
        for (label, amount), invoice in zip((("Serveur de sauvegarde", "6 000,00"), ("Onduleur", "2 500,00")),
                                            served["invoices"], strict=True):
            agent.get_by_label("Catégorie de dépense").select_option("equipement")
            agent.get_by_label("Description de la dépense").fill(label)
            agent.get_by_label("Montant HT en euros").fill(amount)
            agent.get_by_label("Facture acquittée (PDF, JPEG ou PNG)").set_input_files(str(invoice))
            agent.get_by_role("button", name="Ajouter la dépense réalisée").click()
            expect(agent.get_by_test_id("realised-expenses")).to_contain_text(label)
        expect(agent.get_by_test_id("declared-total")).to_have_text("8 500,00 €")
        expect(agent.get_by_test_id("payable")).to_have_text("3 400,00 €")  # 40 % of 8,500.00
        agent.get_by_label("J'atteste sur l'honneur").check()
        agent.get_by_role("button", name="Envoyer la demande de versement").click()
        expect(agent.get_by_test_id("payment-request")).to_contain_text("envoyée, en attente de la région")

        clerk = browser.new_page(viewport=DESKTOP, locale="fr-FR")
        clerk.set_default_timeout(20_000)
        log_in(clerk, base, served["finance"])
        clerk.goto(f"{base}/instruction/?onglet=demandes-versement")
        clerk.get_by_role("link", name=served["reference"]).first.click()
        clerk.get_by_role("link", name="Solde — Envoyée, en attente de la Région").click()
        expect(clerk.get_by_test_id("payable")).to_have_text("3 400,00 €")
        expect(clerk.get_by_test_id("released")).to_have_text("600,00 €")
        expect(clerk.get_by_test_id("realised-expenses")).to_contain_text("Télécharger facture-serveur.pdf")
        expect(clerk.get_by_test_id("realised-expenses")).to_contain_text("Télécharger facture-onduleur.pdf")
        clerk.get_by_label("Référence (mandat, titre…)").fill("MDT-2026-0042")
        clerk.get_by_role("button", name="Verser le montant").click()
        expect(clerk.get_by_test_id("confirmation")).to_contain_text("600,00 € seront rendus à l'enveloppe")
        clerk.get_by_role("button", name="Confirmer le versement du solde").click()
        expect(clerk.locator("body")).to_contain_text("Le dossier est soldé : 3 400,00 € versés au total.")
        ARTIFACTS.mkdir(exist_ok=True)
        clerk.screenshot(path=str(ARTIFACTS / "payment-request-paid.png"), full_page=True)
    with served["app"].app_context():
        dossier = db.session.get(Dossier, served["dossier"])
        assert (dossier.state, dossier.paid_amount) == ("paid", Decimal("3400.00"))
        consumed = db.session.scalar(select(Envelope.consumed).where(Envelope.scope == "epci:200000925",
                                                                     Envelope.aid_number == 2))
        assert consumed == Decimal("3400.00")  # 4,000.00 granted, 600.00 released
        db.session.remove()
