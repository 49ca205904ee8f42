"""Whole journeys in Debian's headless Chromium, against the application as deployed: gunicorn, a
Celery worker process on Redis, an SMTP server, PostgreSQL (tests/live.py). Every e-mail read here
went from the web app through the outbox, Redis and the worker to the SMTP server.

Amounts are computed by hand from the guide (docs/rules.md, the demo campaign = pair-2021's rules):
aid 1 is the sum of the packs' forfaits met by their expenses (Pack 1: 1,000 €, Pack 2: 500 €, Pack
3: 1,000 €; at most 2,500 € per commune); aid 4 is 40 % of the eligible expenses (at least
10,000 € HT), at most 40,000 € for an EPCI, its communes and SIVOS together.

Screenshots of every step are kept under test-artifacts/journeys/<test>/ when a step fails.
"""

from __future__ import annotations

import csv
import io
import re

import pytest

from tests import factories
from tests.live import downloaded as download_of
from tests.live import journey, live_stack, pdf_text

pytestmark = pytest.mark.browser

AGENT = "secretariat@agencourt.exemple.fr"
AGENT_PASSWORD = "le lavoir de la place fleurie"
NBSP = "\u00a0"


def euros(text: str) -> str:
    """``"1 450,00 €"`` as the pages write it (no-break spaces)."""
    return text.replace(" ", NBSP)


@pytest.fixture
def small_commune(tmp_path, monkeypatch):
    """The stack, with the Region's admin, an instructor and a finance officer."""
    def world():
        return {
            "admin": factories.user("admin", full_name="Anne Admin").email,
            "instructor": factories.user("instructor", full_name="Inès Moreau").email,
            "finance": factories.user("finance", full_name="Fabrice Trésor").email,
        }

    with live_stack("journey1", tmp_path, monkeypatch, world) as stack:
        yield stack


def test_a_small_commune_from_registration_to_its_grant_letter(small_commune, request, tmp_path):
    from playwright.sync_api import expect

    (stack, people), base = small_commune, small_commune[0].base
    invoice_computer = tmp_path / "facture-ordinateur.pdf"
    invoice_computer.write_bytes(factories.pdf_bytes("Facture ordinateur portable 1200 EUR HT"))
    invoice_software = tmp_path / "facture-logiciel.pdf"
    invoice_software.write_bytes(factories.pdf_bytes("Facture suite bureautique 450 EUR HT"))
    signed_quote = tmp_path / "devis-signé-logiciel.pdf"
    signed_quote.write_bytes(factories.pdf_bytes("Devis signe suite bureautique"))

    with journey(request, base, tmp_path) as j:
        agent = j.person("agent")
        with j.step("the agent finds her commune and registers", "agent"):
            agent.goto(f"{base}/inscription")
            agent.get_by_label("Nom, code INSEE ou SIREN de votre collectivité").fill("Agencourt")
            agent.get_by_role("button", name="Rechercher").click()
            agent.get_by_role("link", name="Choisir Agencourt", exact=True).click()
            expect(agent.get_by_test_id("chosen-collectivite")).to_contain_text("Agencourt")
            agent.get_by_label("Prénom et nom").fill("Claire Martin")
            agent.get_by_label("Adresse électronique").fill(AGENT)
            agent.get_by_label("Mot de passe", exact=True).fill(AGENT_PASSWORD)
            agent.get_by_label("Confirmez le mot de passe").fill(AGENT_PASSWORD)
            agent.get_by_role("button", name="Créer mon compte").click()
            expect(agent.get_by_text(f"Un message vient d'être envoyé à {AGENT}")).to_be_visible()

        with j.step("she confirms her address from the e-mail", "agent"):
            [mail] = stack.mails_to(AGENT)
            assert mail["Subject"] == "Confirmez votre adresse électronique"
            agent.goto(stack.link_in(mail, "/inscription/confirmer/"))
            expect(agent.get_by_text(f"Votre adresse {AGENT} est confirmée.")).to_be_visible()
            expect(agent.get_by_text("Votre compte doit encore être validé")).to_be_visible()
            j.log_in("agent", AGENT, AGENT_PASSWORD)  # not yet approved: no access
            expect(agent.get_by_test_id("current-user")).to_have_count(0)

        admin = j.log_in("admin", people["admin"], totp=True)
        with j.step("the Region's admin approves her account", "admin"):
            admin.get_by_role("link", name="Administration").first.click()
            admin.get_by_role("link", name="Comptes à valider").click()
            row = admin.get_by_role("row").filter(has_text="Claire Martin")
            expect(row).to_contain_text("Agencourt")
            expect(row).to_contain_text("confirmée")
            row.get_by_role("button", name="Valider le compte de Claire Martin").click()
            expect(admin.get_by_text(f"Le compte de Claire Martin ({AGENT}, Agencourt) est validé")).to_be_visible()
            expect(admin.get_by_test_id("no-pending")).to_be_visible()
            mails = stack.mails_to(AGENT, 2)
            assert mails[1]["Subject"] == "Votre compte est validé"

        with j.step("she logs in and starts a dossier for aid 1", "agent"):
            j.log_in("agent", AGENT, AGENT_PASSWORD)
            expect(agent.get_by_test_id("current-user")).to_contain_text("Claire Martin")
            expect(agent.get_by_role("heading", name="Agencourt", exact=True)).to_be_visible()
            aid1 = agent.get_by_test_id("aid-1")
            expect(aid1.get_by_text("Éligible", exact=True)).to_be_visible()
            expect(aid1.get_by_test_id("remaining")).to_have_text(euros("2 500,00 €"))
            aid1.get_by_label("Intitulé du projet (facultatif)").fill("Équipement du secrétariat de mairie")
            aid1.get_by_role("button", name="Créer un dossier").click()
            expect(agent.get_by_role("heading", name="Équipement du secrétariat de mairie")).to_be_visible()
            expect(agent.get_by_test_id("state")).to_have_text("Brouillon")

        with j.step("she declares two expenses with their PDF invoices", "agent"):
            # Pack 1: min(1,000 forfait, 1,200 expenses) = 1,000; Pack 2: min(500, 450) = 450.
            for category, amount, label, pack, invoice in (
                    ("Équipement", "1 200,00", "Ordinateur portable du secrétariat",
                     "Pack 1 (forfait de 1 000,00 €)", invoice_computer),
                    ("Logiciel", "450,00", "Suite bureautique", "Pack 2 (forfait de 500,00 €)", invoice_software)):
                agent.get_by_label("Catégorie de dépense").select_option(label=category)
                agent.get_by_label("Montant HT en euros").fill(amount)
                agent.get_by_label("Description de la dépense").fill(label)
                agent.get_by_label("Pack", exact=True).select_option(label=euros(pack))
                agent.get_by_role("button", name="Enregistrer la dépense").click()
                expect(agent.get_by_text("Dépense enregistrée.")).to_be_visible()
                n = agent.get_by_test_id("line").count()
                agent.get_by_label(f"Factures ou devis pour la dépense n°{n}").set_input_files(str(invoice))
                agent.get_by_role("button", name=f"Joindre à la dépense n°{n}").click()
                expect(agent.get_by_role("link", name=invoice.name, exact=True)).to_be_visible()
            expect(agent.get_by_test_id("line")).to_have_count(2)
            expect(agent.get_by_test_id("estimation").locator("[data-estimation-amount]")).to_have_text(
                euros("1 450,00 €"))
            expect(agent.get_by_test_id("ready")).to_be_visible()

        with j.step("she submits and downloads the acknowledgment", "agent"):
            agent.get_by_role("button", name="Déposer le dossier").click()
            expect(agent.get_by_test_id("state")).to_have_text("Reçu")
            reference = re.search(r"DEMO-A1-\d{6}", agent.content()).group(0)
            # Received 28 November 2026: without a decision, rejected two months later.
            expect(agent.get_by_test_id("implicit-decision")).to_contain_text("28 janvier 2027")
            text = pdf_text(download_of(agent, lambda: agent.get_by_test_id("act-acknowledgment").click()))
            assert "Accuséderéception" in text and reference in text
            assert "Agencourt" in text and "réputéerejetéele28janvier2027" in text
            subjects = [m["Subject"] for m in stack.mails_to(AGENT, 3)]
            assert f"Dossier {reference} : dépôt enregistré" in subjects

        instructor = j.log_in("instructor", people["instructor"])
        with j.step("the instructor finds it in her queue and asks for a document", "instructor"):
            instructor.goto(f"{base}/instruction/")
            row = instructor.get_by_role("row").filter(has_text=reference)
            expect(row).to_contain_text("Agencourt")
            row.get_by_role("link", name=reference).click()
            expect(instructor.get_by_role("heading", level=1)).to_contain_text("Reçu")
            instructor.get_by_label("Pièces demandées (message au demandeur)").fill(
                "Merci de joindre le devis signé de la suite bureautique.")
            instructor.get_by_role("button", name="Demander des pièces").click()
            expect(instructor.get_by_role("heading", level=1)).to_contain_text("Pièces demandées")
            stack.mails_to(AGENT, 4)
            assert f"Dossier {reference} : des pièces sont demandées" in [m["Subject"] for m in stack.sink.to(AGENT)]

        with j.step("the agent answers with the signed quote", "agent"):
            agent.reload()
            expect(agent.get_by_test_id("state")).to_have_text("Pièces demandées")
            request_box = agent.get_by_role("region", name="La Région vous demande des compléments")
            expect(request_box).to_contain_text("Merci de joindre le devis signé de la suite bureautique.")
            request_box.get_by_label("Votre réponse à l'instructeur").fill("Bonjour, voici le devis signé.")
            request_box.get_by_label("Pièces demandées (PDF, JPEG ou PNG)").set_input_files(str(signed_quote))
            request_box.get_by_label("Rattacher les pièces à la dépense").select_option(label="Dépense n°2 : Suite bureautique")
            request_box.get_by_role("button", name="Renvoyer le dossier complété").click()
            expect(agent.get_by_test_id("state")).to_have_text("Reçu")
            expect(agent.get_by_role("link", name=signed_quote.name, exact=True)).to_be_visible()

        with j.step("the instructor declares it eligible and grants it", "instructor"):
            instructor.reload()
            expect(instructor.get_by_role("heading", level=1)).to_contain_text("Reçu")
            expect(instructor.get_by_role("link", name=f"Télécharger {signed_quote.name}")).to_be_visible()
            instructor.get_by_role("button", name="Déclarer éligible").click()
            expect(instructor.get_by_role("heading", level=1)).to_contain_text("Éligible")
            expect(instructor.get_by_label("Montant attribué (€ HT)")).to_have_value("1450,00")
            instructor.get_by_role("button", name="Attribuer la subvention").click()
            expect(instructor.get_by_role("heading", level=1)).to_contain_text("Attribué")
            expect(instructor.get_by_test_id("envelope")).to_contain_text(euros("1 050,00 €"))  # 2,500 − 1,450

        with j.step("the agent downloads the grant letter", "agent"):
            agent.reload()
            expect(agent.get_by_test_id("state")).to_have_text("Attribué")
            expect(agent.get_by_test_id("decision")).to_contain_text(euros("1 450,00 €"))
            text = pdf_text(download_of(agent, lambda: agent.get_by_test_id("act-grant").click()))
            assert "Notificationd'attributiondesubvention" in text and reference in text
            assert "1450,00€" in text and "millequatrecentcinquanteeuros" in text
            assert f"Dossier {reference} : subvention attribuée" in [m["Subject"] for m in stack.mails_to(AGENT, 6)]

        with j.step("the export of the decided dossiers shows the grant", "instructor"):
            instructor.goto(f"{base}/instruction/?onglet=decides")
            data = download_of(instructor, lambda: instructor.get_by_test_id("export-csv").click())
            rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
            [line] = [r for r in rows if r["Référence"] == reference]
            assert (line["Demandeur"], line["INSEE ou SIREN"], line["État"]) == ("Agencourt", "21001", "Attribué")
            assert line["Aide"] == "Aide 1 · Mise à niveau de l’équipement et aménagement numérique"
            assert (line["Montant demandé"], line["Attribué"], line["Versé"], line["Reste à verser"]) == (
                "1450,00", "1450,00", "", "1450,00")

