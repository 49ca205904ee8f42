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
import time

import pytest

from tests import factories
from tests.a11y import confirm_step
from tests.live import downloaded as download_of
from tests.live import journey, live_stack, pdf_text

pytestmark = pytest.mark.browser

AGENT = "secretariat@agencourt.exemple.fr"
AGENT_PASSWORD = "le lavoir de la place fleurie"
NBSP = "\u00a0"


def euros(text: str) -> str:
    """``"1 450,00 €"`` as the pages write it (no-break spaces)."""
    return text.replace(" ", NBSP)


def figures(page, caption: str, row: str) -> list[str]:
    """The cells of the row headed ``row`` (its start) of the table captioned ``caption`` (its start)."""
    from playwright.sync_api import expect

    table = page.get_by_role("table", name=re.compile("^" + re.escape(caption)))
    found = table.get_by_role("row").filter(has=page.get_by_role("rowheader", name=re.compile("^" + re.escape(row))))
    expect(found).to_have_count(1)
    return [text.strip() for text in found.get_by_role("cell").all_inner_texts()]


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
    paid_computer = tmp_path / "facture-acquittée-ordinateur.pdf"
    paid_computer.write_bytes(factories.pdf_bytes("Facture acquittee ordinateur portable 1200 EUR HT"))
    paid_software = tmp_path / "facture-acquittée-logiciel.pdf"
    paid_software.write_bytes(factories.pdf_bytes("Facture acquittee suite bureautique 450 EUR HT"))

    with journey(request, base, tmp_path) as j:
        agent = j.person("agent")
        with j.step("the agent finds her commune and registers", "agent"):
            agent.goto(f"{base}/inscription")
            j.check("agent", "inscription — recherche de la collectivité")
            agent.get_by_label("Nom, code INSEE ou SIREN de votre collectivité").fill("Agencourt")
            agent.get_by_role("button", name="Rechercher").click()
            j.check("agent", "inscription — résultats de la recherche")
            agent.get_by_role("link", name="Choisir Agencourt", exact=True).click()
            expect(agent.get_by_test_id("chosen-collectivite")).to_contain_text("Agencourt")
            j.check("agent", "inscription — formulaire du compte")
            agent.get_by_label("Prénom et nom").fill("Claire Martin")
            agent.get_by_label("Adresse électronique").fill(AGENT)
            agent.get_by_label("Mot de passe", exact=True).fill(AGENT_PASSWORD)
            agent.get_by_label("Confirmez le mot de passe").fill("le lavoir de la place")  # a typo
            agent.get_by_role("button", name="Créer mon compte").click()
            expect(agent.get_by_text("Les deux mots de passe ne sont pas identiques.").first).to_be_visible()
            j.check("agent", "inscription — erreurs du formulaire")
            agent.get_by_label("Mot de passe", exact=True).fill(AGENT_PASSWORD)
            agent.get_by_label("Confirmez le mot de passe").fill(AGENT_PASSWORD)
            agent.get_by_role("button", name="Créer mon compte").click()
            expect(agent.get_by_text(f"Un message vient d'être envoyé à {AGENT}")).to_be_visible()
            j.check("agent", "connexion — après l'inscription")

        with j.step("she confirms her address from the e-mail", "agent"):
            [mail] = stack.mails_to(AGENT)
            assert mail["Subject"] == "Confirmez votre adresse électronique"
            agent.goto(stack.link_in(mail, "/inscription/confirmer/"))
            expect(agent.get_by_text(f"Votre adresse {AGENT} est confirmée.")).to_be_visible()
            expect(agent.get_by_text("Votre compte doit encore être validé")).to_be_visible()
            j.check("agent", "connexion — adresse confirmée")
            j.log_in("agent", AGENT, AGENT_PASSWORD)  # not yet approved: no access
            expect(agent.get_by_text("Votre compte n'a pas encore été validé.")).to_be_visible()
            expect(agent.get_by_test_id("current-user")).to_have_count(0)
            j.check("agent", "connexion — compte pas encore validé")

        admin = j.log_in("admin", people["admin"], totp=True)
        with j.step("the Region's admin approves her account", "admin"):
            admin.get_by_role("link", name="Administration").first.click()
            admin.get_by_role("link", name="Comptes à valider").click()
            j.check("admin", "administration — comptes à valider")
            row = admin.get_by_role("row").filter(has_text="Claire Martin")
            expect(row).to_contain_text("Agencourt")
            expect(row).to_contain_text("confirmée")
            row.get_by_role("button", name="Valider le compte de Claire Martin").click()
            expect(admin.get_by_text(f"Le compte de Claire Martin ({AGENT}, Agencourt) est validé")).to_be_visible()
            expect(admin.get_by_test_id("no-pending")).to_be_visible()
            j.check("admin", "administration — compte validé")
            mails = stack.mails_to(AGENT, 2)
            assert mails[1]["Subject"] == "Votre compte est validé"

        with j.step("she logs in and starts a dossier for aid 1", "agent"):
            j.log_in("agent", AGENT, AGENT_PASSWORD)
            expect(agent.get_by_test_id("current-user")).to_contain_text("Claire Martin")
            expect(agent.get_by_role("heading", name="Agencourt", exact=True)).to_be_visible()
            aid1 = agent.get_by_test_id("aid-1")
            expect(aid1.get_by_text("Éligible", exact=True)).to_be_visible()
            expect(aid1.get_by_test_id("remaining")).to_have_text(euros("2 500,00 €"))
            j.check("agent", "portail — accueil de la collectivité")
            aid1.get_by_label("Intitulé du projet (facultatif)").fill("Équipement du secrétariat de mairie")
            aid1.get_by_role("button", name="Créer un dossier").click()
            expect(agent.get_by_role("heading", name="Équipement du secrétariat de mairie")).to_be_visible()
            expect(agent.get_by_test_id("state")).to_have_text("Brouillon")
            j.check("agent", "portail — nouveau brouillon")
            agent.get_by_label("Catégorie de dépense").select_option(label="Équipement")
            agent.get_by_label("Montant HT en euros").fill("douze cents")
            agent.get_by_role("button", name="Enregistrer la dépense").click()
            expect(agent.get_by_label("Montant HT en euros")).to_have_attribute("aria-invalid", "true")
            j.check("agent", "portail — erreurs du formulaire de dépense")

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
            j.check("agent", "portail — brouillon prêt à déposer")

        with j.step("she submits and downloads the acknowledgment", "agent"):
            confirm_step(agent, "submit-step", "Confirmer le dépôt")
            expect(agent.get_by_test_id("state")).to_have_text("Reçu")
            reference = re.search(r"DEMO-A1-\d{6}", agent.content()).group(0)
            # Received 28 November 2026: without a decision, rejected two months later.
            expect(agent.get_by_test_id("implicit-decision")).to_contain_text("28 janvier 2027")
            j.check("agent", "portail — dossier déposé")
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
            j.check("instructor", "instruction — liste des dossiers à instruire")
            row.get_by_role("link", name=reference).click()
            expect(instructor.get_by_role("heading", level=1)).to_contain_text("Reçu")
            j.check("instructor", "instruction — dossier reçu")
            instructor.get_by_role("button", name="Demander des pièces").click()  # no message yet
            expect(instructor.get_by_text("Indiquez un motif : il est communiqué au demandeur").first).to_be_visible()
            j.check("instructor", "instruction — demande de pièces sans message")
            instructor.get_by_label("Pièces demandées (message au demandeur)").fill(
                "Merci de joindre le devis signé de la suite bureautique.")
            instructor.get_by_role("button", name="Demander des pièces").click()
            expect(instructor.get_by_role("heading", level=1)).to_contain_text("Pièces demandées")
            j.check("instructor", "instruction — pièces demandées")
            stack.mails_to(AGENT, 4)
            assert f"Dossier {reference} : des pièces sont demandées" in [m["Subject"] for m in stack.sink.to(AGENT)]

        with j.step("the agent answers with the signed quote", "agent"):
            agent.reload()
            expect(agent.get_by_test_id("state")).to_have_text("Pièces demandées")
            request_box = agent.get_by_role("region", name="La Région vous demande des compléments")
            expect(request_box).to_contain_text("Merci de joindre le devis signé de la suite bureautique.")
            j.check("agent", "portail — pièces demandées")
            request_box.get_by_label("Votre réponse à l'instructeur").fill("Bonjour, voici le devis signé.")
            request_box.get_by_label("Pièces demandées (PDF, JPEG ou PNG)").set_input_files(str(signed_quote))
            request_box.get_by_label("Rattacher les pièces à la dépense").select_option(label="Dépense n°2 : Suite bureautique")
            request_box.get_by_role("button", name="Renvoyer le dossier complété").click()
            expect(agent.get_by_test_id("state")).to_have_text("Reçu")
            expect(agent.get_by_role("link", name=signed_quote.name, exact=True)).to_be_visible()
            j.check("agent", "portail — dossier complété")

        with j.step("the instructor declares it eligible and grants it", "instructor"):
            instructor.reload()
            expect(instructor.get_by_role("heading", level=1)).to_contain_text("Reçu")
            expect(instructor.get_by_role("link", name=f"Télécharger {signed_quote.name}")).to_be_visible()
            instructor.get_by_role("button", name="Déclarer éligible").click()
            expect(instructor.get_by_role("heading", level=1)).to_contain_text("Éligible")
            expect(instructor.get_by_label("Montant attribué (€ HT)")).to_have_value("1450,00")
            j.check("instructor", "instruction — dossier éligible")
            confirm_step(instructor, "grant-step", "Confirmer l'attribution")
            expect(instructor.get_by_role("heading", level=1)).to_contain_text("Attribué")
            expect(instructor.get_by_test_id("envelope")).to_contain_text(euros("1 050,00 €"))  # 2,500 − 1,450
            j.check("instructor", "instruction — subvention attribuée")

        with j.step("the agent downloads the grant letter", "agent"):
            agent.reload()
            expect(agent.get_by_test_id("state")).to_have_text("Attribué")
            expect(agent.get_by_test_id("decision")).to_contain_text(euros("1 450,00 €"))
            j.check("agent", "portail — subvention attribuée")
            text = pdf_text(download_of(agent, lambda: agent.get_by_test_id("act-grant").click()))
            assert "Notificationd'attributiondesubvention" in text and reference in text
            assert "1450,00€" in text and "millequatrecentcinquanteeuros" in text
            assert f"Dossier {reference} : subvention attribuée" in [m["Subject"] for m in stack.mails_to(AGENT, 6)]

        with j.step("the dashboard counts the grant", "instructor"):
            instructor.get_by_role("link", name="Tableau de bord").click()
            expect(instructor.get_by_role("heading", name="Tableau de bord")).to_be_visible()
            j.check("instructor", "tableau de bord")
            # dossiers, requested, granted, paid, committed
            assert figures(instructor, "Montants demandés, attribués et versés par aide", "Aide 1 ·")[:5] == [
                "1", euros("1 450,00 €"), euros("1 450,00 €"), euros("0,00 €"), euros("1 450,00 €")]
            assert figures(instructor, "Nombre de dossiers par état", "Attribué") == ["1"]

        with j.step("the agent asks for the balance with the paid invoices", "agent"):
            agent.reload()
            agent.get_by_role("region", name="Demande de versement").get_by_role(
                "link", name="Demander un versement").click()
            expect(agent.get_by_role("heading", name="Demande de versement", level=1)).to_be_visible()
            j.check("agent", "portail — demande de versement")
            agent.get_by_label(re.compile("^Solde")).check()
            agent.get_by_role("button", name="Commencer la demande de versement").click()
            for category, amount, label, pack, invoice in (
                    ("Équipement", "1 200,00", "Ordinateur portable du secrétariat",
                     "Pack 1 (forfait de 1 000,00 €)", paid_computer),
                    ("Logiciel", "450,00", "Suite bureautique", "Pack 2 (forfait de 500,00 €)", paid_software)):
                agent.get_by_label("Catégorie de dépense").select_option(label=category)
                agent.get_by_label("Description de la dépense").fill(label)
                agent.get_by_label("Montant HT en euros").fill(amount)
                agent.get_by_label("Pack", exact=True).select_option(label=euros(pack))
                agent.get_by_label("Facture acquittée (PDF, JPEG ou PNG)").set_input_files(str(invoice))
                agent.get_by_role("button", name="Ajouter la dépense réalisée").click()
                expect(agent.get_by_role("link", name=invoice.name, exact=True)).to_be_visible()
            expect(agent.get_by_test_id("declared-total")).to_have_text(euros("1 650,00 €"))
            expect(agent.get_by_test_id("payable")).to_have_text(euros("1 450,00 €"))  # as granted
            j.check("agent", "portail — solde prêt à envoyer")
            agent.get_by_role("button", name="Envoyer la demande de versement").click()  # not attested
            expect(agent.get_by_test_id("current-request")).to_contain_text("En préparation")
            j.check("agent", "portail — demande de versement sans attestation")
            agent.get_by_label(re.compile("^J'atteste sur l'honneur")).check()
            agent.get_by_role("button", name="Envoyer la demande de versement").click()
            expect(agent.get_by_text(euros("Demande de versement envoyée : 1 450,00 € à verser"))).to_be_visible()
            expect(agent.get_by_role("region", name="Demande de versement")).to_contain_text("Demande en cours : solde")
            j.check("agent", "portail — solde demandé")

        finance = j.log_in("finance", people["finance"])
        with j.step("finance pays the balance", "finance"):
            finance.goto(f"{base}/instruction/?onglet=decides")
            finance.get_by_role("row").filter(has_text=reference).get_by_role("link", name=reference).click()
            finance.get_by_role("region", name="Demandes de versement").get_by_role(
                "link", name=re.compile("^Solde")).click()
            expect(finance.get_by_test_id("request-status")).to_have_text("Envoyée, en attente de la Région")
            j.check("finance", "versement — demande de solde reçue")
            expect(finance.get_by_label("Montant versé (€)")).to_have_value("1450,00")
            finance.get_by_label("Date du versement").fill("2026-11-28")  # the day (not in the future)
            finance.get_by_label("Référence (mandat, titre…)").fill("MANDAT-2026-1187")
            finance.get_by_role("button", name="Verser le montant").click()
            confirm = finance.get_by_role("button", name="Confirmer le versement du solde")
            if confirm.count():  # the balance closes the dossier: said, then confirmed
                j.check("finance", "versement — confirmation du solde")
                confirm.click()
            expect(finance.get_by_text(euros(
                "Versement de 1 450,00 € enregistré pour la demande. Le dossier est soldé"))).to_be_visible()
            expect(finance.get_by_role("heading", level=1)).to_contain_text("Versé")
            expect(finance.get_by_role("region", name="Demandes de versement")).to_contain_text("Solde — Versée")
            j.check("finance", "instruction — dossier soldé")
            subjects = [m["Subject"] for m in stack.mails_to(AGENT, 7)]
            assert any(subject.startswith(f"Dossier {reference} : versement") for subject in subjects), subjects

        with j.step("the agent sees the dossier paid", "agent"):
            agent.goto(f"{base}/portail/")
            agent.get_by_role("link", name="Équipement du secrétariat de mairie").click()
            expect(agent.get_by_test_id("state")).to_have_text("Versé")
            expect(agent.get_by_test_id("payments")).to_contain_text(euros("1 450,00 €"))
            expect(agent.get_by_test_id("payments")).to_contain_text("MANDAT-2026-1187")
            j.check("agent", "portail — dossier versé")

        with j.step("the dashboard and the export show the payment", "finance"):
            finance.get_by_role("link", name="Tableau de bord").click()
            j.check("finance", "tableau de bord — après le versement")
            # dossiers, requested, granted, paid, committed (the paid amount once the balance is paid)
            assert figures(finance, "Montants demandés, attribués et versés par aide", "Aide 1 ·")[:5] == [
                "1", euros("1 450,00 €"), euros("1 450,00 €"), euros("1 450,00 €"), euros("1 450,00 €")]
            assert figures(finance, "Nombre de dossiers par état", "Versé") == ["1"]
            finance.goto(f"{base}/instruction/?onglet=verses")
            j.check("finance", "instruction — dossiers versés")
            data = download_of(finance, lambda: finance.get_by_test_id("export-csv").click())
            rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
            [line] = [r for r in rows if r["Référence"] == reference]
            assert (line["Demandeur"], line["INSEE ou SIREN"], line["État"]) == ("Agencourt", "21001", "Versé")
            assert line["Aide"] == "Aide 1 · Mise à niveau de l’équipement et aménagement numérique"
            assert (line["Montant demandé"], line["Attribué"], line["Versé"], line["Reste à verser"]) == (
                "1450,00", "1450,00", "1450,00", "0,00")

        j.assert_accessible()


# --- a campaign whose grants are voted by the commission permanente ---------------------------


@pytest.fixture
def voted_campaign(tmp_path, monkeypatch):
    """The stack, the demo campaign's grants voted in session, and a received aid-1 dossier of
    Agencourt (an equipment of 1,200 € HT on Pack 1)."""
    def world():
        factories.campaign().grants_need_vote = True
        factories.user("applicant", collectivite=factories.commune("21001"), email=AGENT,
                       full_name="Claire Martin", password=AGENT_PASSWORD)
        dossier = factories.dossier("received", aid=1)
        return {"admin": factories.user("admin", full_name="Anne Admin").email,
                "instructor": factories.user("instructor", full_name="Inès Moreau").email,
                "reference": dossier.reference}

    with live_stack("journey1b", tmp_path, monkeypatch, world) as stack:
        yield stack


def test_a_small_commune_s_dossier_granted_by_a_vote_of_the_commission(voted_campaign, request, tmp_path):
    from playwright.sync_api import expect

    (stack, people), base = voted_campaign, voted_campaign[0].base
    reference = people["reference"]
    with journey(request, base, tmp_path) as j:
        instructor = j.log_in("instructor", people["instructor"])
        with j.step("the instructor declares the dossier eligible: the grant needs a vote", "instructor"):
            instructor.goto(f"{base}/instruction/")
            instructor.get_by_role("row").filter(has_text=reference).get_by_role("link", name=reference).click()
            instructor.get_by_role("button", name="Déclarer éligible").click()
            expect(instructor.get_by_role("heading", level=1)).to_contain_text("Éligible")
            expect(instructor.get_by_test_id("vote-needed")).to_contain_text("votées par la commission permanente")
            expect(instructor.get_by_role("button", name="Attribuer la subvention")).to_be_disabled()
            j.check("instructor", "instruction — dossier éligible, attribution par vote")

        admin = j.log_in("admin", people["admin"], totp=True)
        with j.step("the admin puts it on the agenda of a session", "admin"):
            admin.get_by_role("link", name="Commission permanente").first.click()
            j.check("admin", "commission — séances")
            admin.get_by_label("Date (JJ/MM/AAAA)").fill("2026-11-28")  # a date input
            admin.get_by_label("Lieu").fill("Besançon, hôtel de Région")
            admin.get_by_role("button", name="Créer la séance").click()
            expect(admin.get_by_text("Séance créée.")).to_be_visible()
            admin.get_by_role("link", name="28 novembre 2026").click()
            expect(admin.get_by_role("heading", level=1)).to_have_text("Commission permanente du 28 novembre 2026")
            admin.get_by_label("Référence du dossier").fill(reference)
            admin.get_by_label("Montant proposé (€)").fill("1000,00")  # Pack 1: min(1,000 forfait, 1,200 expenses)
            admin.get_by_role("button", name="Inscrire").click()
            expect(admin.get_by_text(f"Dossier {reference} inscrit à l'ordre du jour.")).to_be_visible()
            row = admin.get_by_test_id("agenda").get_by_role("row").filter(has_text=reference)
            expect(row).to_contain_text(euros("1 000,00 €"))
            j.check("admin", "commission — ordre du jour")

        with j.step("the session adopts it and the admin grants what was adopted", "admin"):
            admin.get_by_label(f"Vote sur le dossier {reference}").select_option(label="Adopté")
            admin.get_by_label("Numéro de la délibération").fill("CP-2026-11-042")
            admin.get_by_role("button", name="Enregistrer la délibération").click()
            expect(admin.get_by_text("Délibération enregistrée.")).to_be_visible()
            expect(admin.get_by_test_id("deliberation")).to_have_text("CP-2026-11-042")
            admin.get_by_role("button", name="Attribuer les subventions adoptées").click()
            expect(admin.get_by_text("1 subvention(s) attribuée(s)")).to_be_visible()
            expect(admin.get_by_test_id("agenda").get_by_role("row").filter(has_text=reference)).to_contain_text(
                "Attribué")
            j.check("admin", "commission — subventions attribuées")

        agent = j.log_in("agent", AGENT, AGENT_PASSWORD)
        with j.step("the agent downloads the letter citing the deliberation", "agent"):
            agent.get_by_role("link", name="Projet").click()
            expect(agent.get_by_test_id("state")).to_have_text("Attribué")
            expect(agent.get_by_test_id("decision")).to_contain_text(euros("1 000,00 €"))
            text = pdf_text(download_of(agent, lambda: agent.get_by_test_id("act-grant").click()))
            assert reference in text and "1000,00€" in text and "milleeuros" in text
            assert "CP-2026-11-042" in text and "28novembre2026" in text
            # The grant e-mail arrives (each line is granted in a savepoint; the outbox is handed to
            # the worker at the commit, not at the savepoint: test_notifications_delivery).
            granted = f"Dossier {reference} : subvention attribuée"
            deadline = time.monotonic() + 60
            while (granted not in [m["Subject"] for m in stack.sink.to(AGENT)]
                   and time.monotonic() < deadline):
                time.sleep(0.2)
            subjects = [m["Subject"] for m in stack.sink.to(AGENT)]
            assert f"Dossier {reference} : dossier éligible" in subjects
            assert granted in subjects, f"{subjects}; worker log:\n{stack.log_tail('worker.log')}"
            j.check("agent", "portail — subvention votée")

        j.assert_accessible()


# --- an EPCI and two of its communes share the aid-4 envelope -------------------------------------

EPCI_AGENT = "dgs@plaine-dijonnaise.exemple.fr"
GENLIS_AGENT = "ecoles@genlis.exemple.fr"
AISEREY_AGENT = "mairie@aiserey.exemple.fr"


@pytest.fixture
def territory(tmp_path, monkeypatch):
    """The stack, with an approved agent of the CC de la Plaine Dijonnaise (22,152 inhabitants), of
    Genlis and of Aiserey (two of its communes), and an instructor."""
    def world():
        for email, name, collectivite in (
                (EPCI_AGENT, "Paul Girard", factories.epci("200000925")),
                (GENLIS_AGENT, "Léa Roux", factories.commune("21292")),
                (AISEREY_AGENT, "Marc Petit", factories.commune("21005"))):
            factories.user("applicant", collectivite=collectivite, email=email, full_name=name)
        return {"instructor": factories.user("instructor", full_name="Inès Moreau").email}

    with live_stack("journey2", tmp_path, monkeypatch, world) as stack:
        yield stack


def test_an_epci_and_two_of_its_communes_apply_for_aid_4_and_the_third_grant_meets_the_cap(
        territory, request, tmp_path):
    from playwright.sync_api import expect

    (stack, people), base = territory, territory[0].base
    # 40 % of each project; 40,000 € for the EPCI's territory: 20,000 + 16,000 leave 4,000 of the
    # 10,000 that Aiserey's project would have.
    projects = (
        ("epci", EPCI_AGENT, "CC de la Plaine Dijonnaise", "Câblage des écoles du territoire",
         "Travaux de câblage", "50 000,00", "20 000,00 €"),
        ("genlis", GENLIS_AGENT, "Genlis", "Tableaux numériques des écoles de Genlis",
         "Équipement", "40 000,00", "16 000,00 €"),
        ("aiserey", AISEREY_AGENT, "Aiserey", "Classe mobile de l'école d'Aiserey",
         "Équipement", "25 000,00", "10 000,00 €"),
    )
    references = {}
    with journey(request, base, tmp_path) as j:
        for who, email, name, title, category, amount, computed in projects:
            with j.step(f"{who} applies for aid 4", who):
                page = j.log_in(who, email)
                expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
                aid4 = page.get_by_test_id("aid-4")
                expect(aid4.get_by_test_id("remaining")).to_have_text(euros("40 000,00 €"))  # nothing granted yet
                j.check(who, f"portail — accueil ({name})")
                aid4.get_by_label("Intitulé du projet (facultatif)").fill(title)
                aid4.get_by_role("button", name="Créer un dossier").click()
                page.get_by_label("Catégorie de dépense").select_option(label=category)
                page.get_by_label("Montant HT en euros").fill(amount)
                page.get_by_label("Description de la dépense").fill(title)
                page.get_by_role("button", name="Enregistrer la dépense").click()
                expect(page.get_by_text("Dépense enregistrée.")).to_be_visible()
                invoice = tmp_path / f"devis-{who}.pdf"
                invoice.write_bytes(factories.pdf_bytes(f"Devis {title}"))
                page.get_by_label("Factures ou devis pour la dépense n°1").set_input_files(str(invoice))
                page.get_by_role("button", name="Joindre à la dépense n°1").click()
                expect(page.get_by_role("link", name=invoice.name, exact=True)).to_be_visible()
                expect(page.get_by_test_id("estimation").locator("[data-estimation-amount]")).to_have_text(
                    euros(computed))
                j.check(who, f"portail — brouillon prêt ({name})")
                confirm_step(page, "submit-step", "Confirmer le dépôt")
                expect(page.get_by_test_id("state")).to_have_text("Reçu")
                references[who] = re.search(r"DEMO-A4-\d{6}", page.content()).group(0)

        instructor = j.log_in("instructor", people["instructor"])

        def open_dossier(who: str) -> None:
            instructor.goto(f"{base}/instruction/?onglet=tous")
            instructor.get_by_role("row").filter(has_text=references[who]).get_by_role(
                "link", name=references[who]).click()
            expect(instructor.get_by_role("heading", level=1)).to_contain_text("Reçu")
            instructor.get_by_role("button", name="Déclarer éligible").click()
            expect(instructor.get_by_role("heading", level=1)).to_contain_text("Éligible")

        for who, granted, left in (("epci", "20000,00", "20 000,00 €"), ("genlis", "16000,00", "4 000,00 €")):
            with j.step(f"the instructor grants {who}'s dossier in full", "instructor"):
                open_dossier(who)
                expect(instructor.get_by_label("Montant attribué (€ HT)")).to_have_value(granted)
                confirm_step(instructor, "grant-step", "Confirmer l'attribution")
                expect(instructor.get_by_role("heading", level=1)).to_contain_text("Attribué")
                expect(instructor.get_by_test_id("envelope")).to_contain_text(euros(left))

        with j.step("Aiserey's dossier is capped at what is left of the envelope", "instructor"):
            open_dossier("aiserey")
            evaluation = instructor.get_by_test_id("evaluation")
            expect(evaluation).to_contain_text(euros("Montant réduit à 4 000,00 €"))
            expect(evaluation).to_contain_text(euros("déjà consommé : 36 000,00 €"))
            amount = instructor.get_by_label("Montant attribué (€ HT)")
            expect(amount).to_have_value("4000,00")
            j.check("instructor", "instruction — dossier éligible, montant plafonné")
            amount.fill("10000,00")  # what 40 % would give without the cap: refused
            confirm_step(instructor, "grant-step", "Confirmer l'attribution")
            expect(instructor.get_by_role("heading", level=1)).to_contain_text("Éligible")
            expect(instructor.get_by_test_id("action-error")).to_contain_text(euros(
                "Le montant attribué (10 000,00 €) ne peut pas dépasser le montant calculé (4 000,00 €)"))
            j.check("instructor", "instruction — montant au-dessus du plafond refusé")
            instructor.get_by_label("Montant attribué (€ HT)").fill("4000,00")
            confirm_step(instructor, "grant-step", "Confirmer l'attribution")
            expect(instructor.get_by_role("heading", level=1)).to_contain_text("Attribué")
            expect(instructor.get_by_test_id("envelope")).to_contain_text(euros("0,00 €"))
            j.check("instructor", "instruction — enveloppe épuisée")

        with j.step("Aiserey's agent sees the capped grant; the territory has nothing left", "aiserey"):
            aiserey = j.pages["aiserey"]
            aiserey.reload()
            expect(aiserey.get_by_test_id("state")).to_have_text("Attribué")
            expect(aiserey.get_by_test_id("decision")).to_contain_text(euros("4 000,00 €"))
            text = pdf_text(download_of(aiserey, lambda: aiserey.get_by_test_id("act-grant").click()))
            assert references["aiserey"] in text and "4000,00€" in text and "quatremilleeuros" in text
            subjects = [m["Subject"] for m in stack.mails_to(AISEREY_AGENT, 3)]  # submit, eligible, grant
            assert f"Dossier {references['aiserey']} : subvention attribuée" in subjects
            aiserey.get_by_role("link", name="Mes dossiers").first.click()
            expect(aiserey.get_by_test_id("aid-4").get_by_test_id("remaining")).to_have_text(euros("0,00 €"))
            j.check("aiserey", "portail — enveloppe de l'aide 4 épuisée")

        with j.step("the dashboard shows the territory at its cap", "instructor"):
            instructor.get_by_role("link", name="Tableau de bord").click()
            j.check("instructor", "tableau de bord — une enveloppe épuisée")
            # aid, cap, committed, share of the cap, left, pending requests
            assert figures(instructor, "Les ", "CC de la Plaine Dijonnaise") == [
                "Aide 4", euros("40 000,00 €"), euros("40 000,00 €"), euros("100 %"), euros("0,00 €"),
                euros("0,00 €")]
            assert figures(instructor, "Montants demandés, attribués et versés par aide", "Aide 4 ·")[:5] == [
                "3", euros("46 000,00 €"), euros("40 000,00 €"), euros("0,00 €"), euros("40 000,00 €")]

        j.assert_accessible()
