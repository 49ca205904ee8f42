"""End to end, in Debian's headless Chromium: an agent sends a message with a file; the instructor
sees the dossier marked as changed in the queue, opens it (the agent then sees "lu"), answers and
labels it. Served as in tests/test_e2e.py, against a committed database of its own, CSRF on."""

from __future__ import annotations

from datetime import timedelta

import pytest

from instruction.extensions import db
from instruction.teamwork import services as team
from tests import factories
from tests.browser import ARTIFACTS, chromium, log_in, require_chromium, serving
from tests.conftest import prepared_app, sibling_database_url

pytestmark = pytest.mark.browser

AN_HOUR_LATER = factories.NOW + timedelta(hours=1)  # 28 novembre 2026 à 12:00 in Paris


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    require_chromium()
    app = prepared_app(sibling_database_url("e2e_team"), tmp_path_factory.mktemp("e2e_team"),
                       WTF_CSRF_ENABLED=True)
    with app.app_context():
        epci = factories.epci("200000925")
        agent = factories.user("applicant", collectivite=epci, email="dgs@plaine-dijonnaise.exemple.fr",
                               full_name="Claire Martin")
        instructor = factories.user("instructor", full_name="Inès Moreau")
        admin = factories.user("admin")
        dossier = factories.dossier("received", aid=2, collectivite=epci)
        team.create_label(admin, "Prêt pour la commission", "success", now=factories.NOW)
        world = {"agent": agent.email, "instructor": instructor.email, "dossier": dossier.id,
                 "reference": dossier.reference}
        db.session.commit()
        db.session.remove()
    with serving(app) as base:
        yield {"base": base, **world}


@pytest.fixture
def browser(served, monkeypatch):

    monkeypatch.setattr("instruction.clock.now", lambda: AN_HOUR_LATER)
    with chromium() as launched:
        yield launched


def signed_in(browser, base: str, email: str):
    page = browser.new_context(viewport={"width": 1280, "height": 1000}, locale="fr-FR").new_page()
    page.set_default_timeout(15_000)
    log_in(page, base, email)
    return page


def test_a_message_with_a_file_read_answered_and_labelled(served, browser, tmp_path):
    from playwright.sync_api import expect

    base, dossier_url = served["base"], f"{served['base']}/portail/dossiers/{served['dossier']}"
    ARTIFACTS.mkdir(exist_ok=True)
    quote = tmp_path / "devis-signé.pdf"
    quote.write_bytes(factories.pdf_bytes("Devis signé"))

    agent = signed_in(browser, base, served["agent"])
    agent.goto(dossier_url)
    agent.get_by_label("Écrire à la Région").fill("Bonjour,\nvoici le devis signé.")
    agent.get_by_label("Pièces jointes (facultatif)").set_input_files(str(quote))
    agent.get_by_role("button", name="Envoyer le message").click()
    expect(agent.get_by_text("Message envoyé à la Région.")).to_be_visible()
    message = agent.get_by_test_id("message").last
    expect(message.get_by_test_id("message-body")).to_have_text("Bonjour,\nvoici le devis signé.")
    expect(message.get_by_test_id("attachment")).to_have_text("devis-signé.pdf")
    expect(message.get_by_test_id("receipt")).to_have_text("Non lu pour l'instant")

    instructor = signed_in(browser, base, served["instructor"])
    instructor.goto(f"{base}/instruction/?onglet=tous")
    row = instructor.get_by_role("row").filter(has_text=served["reference"])
    expect(row.get_by_test_id("changed")).to_have_text("Modifié : 1 nouveau message, 1 nouvelle pièce")
    instructor.screenshot(path=str(ARTIFACTS / "teamwork-queue-changed.png"), full_page=True)
    row.get_by_role("link", name=served["reference"]).click()
    expect(instructor.get_by_test_id("changed").first).to_contain_text("1 nouveau message, 1 nouvelle pièce")
    incoming = instructor.get_by_test_id("message").last
    expect(incoming).to_contain_text("Claire Martin (CC de la Plaine Dijonnaise)")
    expect(incoming.get_by_test_id("new")).to_have_text("nouveau")
    instructor.get_by_label("Écrire au demandeur").fill("Merci, le devis est complet.")
    instructor.get_by_role("button", name="Envoyer le message").click()
    expect(instructor.get_by_text("Message envoyé au demandeur.")).to_be_visible()
    instructor.get_by_label("Étiquette à ajouter").select_option(label="Prêt pour la commission")
    instructor.get_by_role("button", name="Ajouter l'étiquette").click()
    expect(instructor.get_by_test_id("labels")).to_contain_text("Prêt pour la commission")
    instructor.screenshot(path=str(ARTIFACTS / "teamwork-dossier.png"), full_page=True)

    agent.reload()
    expect(agent.get_by_test_id("message").first.get_by_test_id("receipt")).to_have_text(
        "✓ Lu par la Région le 28 novembre 2026 à 12:00")
    expect(agent.get_by_test_id("message").last).to_contain_text("Merci, le devis est complet.")
    expect(agent.get_by_text("Prêt pour la commission")).to_have_count(0)
    agent.screenshot(path=str(ARTIFACTS / "teamwork-portal-read.png"), full_page=True)
