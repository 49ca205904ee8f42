"""The applicant portal: aids and envelopes, drafts, expense lines, estimation, submission, follow-up.

"Now" is frozen through ``instruction.clock.now`` (the portal's only clock).
"""

from __future__ import annotations

import html
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from instruction.dossiers import services
from instruction.dossiers.models import AuditEvent, Document, Dossier, ExpenseLine
from instruction.portal.forms import parse_amount
from instruction.portal.texts import time_left
from tests import factories
from tests.factories import NOW

# The demo campaign's deadline is 2027-07-01 00:00 Europe/Paris = 2027-06-30 22:00 UTC.
DEADLINE = datetime(2027, 6, 30, 22, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    """The portal's clock, frozen inside the demo campaign; tests move it with ``set_now``."""
    state = {"now": NOW}
    monkeypatch.setattr("instruction.clock.now", lambda: state["now"])
    return state


def page(response) -> str:
    return html.unescape(response.get_data(as_text=True)).replace("\u00a0", " ")


def applicant(session, collectivite=None):
    user = factories.user("applicant", collectivite=collectivite or factories.commune())
    session.commit()
    return user


def create(client, aid, token="jeton-de-formulaire-0001", title=""):
    return client.post("/portail/dossiers", data={"aid_number": aid, "client_token": token, "title": title})


def draft_of(session, user, aid=1, lines=()):
    """A draft created as the portal does, with ``lines`` (dicts) and one PDF per line."""
    dossier = services.create_draft(campaign=factories.campaign(), aid_number=aid,
                                    collectivite=user.collectivite, author=user, title="Projet", now=NOW)
    for spec in lines:
        line = services.add_line(dossier, **{**spec, "amount_ht": Decimal(spec["amount_ht"])})
        factories.attach_document(line, user)
    session.commit()
    return dossier


def upload(client, dossier, line, name="facture.pdf", data=None):
    data = factories.pdf_bytes() if data is None else data
    return client.post(f"/portail/dossiers/{dossier.id}/depenses/{line.id}/pieces",
                       data={"files": (io.BytesIO(data), name)}, content_type="multipart/form-data")


EQUIPMENT = {"category": "equipement", "label": "Ordinateur", "amount_ht": "1200.00", "pack": 1}


# --- which aids can I ask for? ---------------------------------------------------------------------


def test_home_lists_the_aids_with_eligibility_envelope_and_deadline(client, session):
    factories.log_in(client, applicant(session))  # Agencourt, 416 inhabitants
    html = page(client.get("/portail/"))
    assert "30 juin 2027 à 23:59" in html and "Plus que 214 jours" in html
    aid1 = re.search(r'data-testid="aid-1".*?</article>', html, re.S).group(0)
    assert "Éligible" in aid1 and "2 500,00 €" in aid1 and "Créer un dossier" in aid1
    assert "Plafond propre à la commune Agencourt" in aid1
    aid2 = re.search(r'data-testid="aid-2".*?</li>', html, re.S).group(0)
    assert "Non éligible" in aid2 and "L'aide 2 est réservée aux EPCI" in aid2
    assert "Créer un dossier" not in aid2


def test_home_shows_what_is_left_in_the_envelope(client, session):
    factories.dossier("granted", aid=1)  # Agencourt: Pack 1 granted, 1 000 € consumed
    factories.log_in(client, applicant(session))
    aid1 = re.search(r'data-testid="aid-1".*?</article>', page(client.get("/portail/")), re.S).group(0)
    assert re.search(r'data-testid="remaining">1 500,00 €</strong> sur 2 500,00 €', aid1)


def test_a_large_epci_is_told_why_it_is_not_eligible(client, session):
    factories.log_in(client, applicant(session, factories.epci("242100410")))  # Dijon Métropole
    html = page(client.get("/portail/"))
    aid2 = re.search(r'data-testid="aid-2".*?</li>', html, re.S).group(0)
    assert "Non éligible" in aid2 and "258 630 habitants" in aid2 and "moins de 50 000 habitants" in aid2


def test_home_lists_only_the_collectivites_dossiers_with_their_state(client, session):
    mine = factories.dossier("received", aid=1)
    other = factories.dossier("draft", aid=2)  # the EPCI's
    factories.log_in(client, applicant(session))
    html = page(client.get("/portail/"))
    assert mine.reference in html and "Reçu" in html
    assert other.reference not in html


def test_home_shows_the_dossiers_fifty_at_a_time_most_recent_first(client, session):
    """60 dossiers of one commune (bulk: dossier i updated i minutes before dossier 0)."""
    commune = factories.commune("21001")
    factories.bulk_dossiers(60, aid=1, collectivites=[commune], states=("received",))
    factories.log_in(client, applicant(session, commune))
    first = page(client.get("/portail/"))
    assert "60 dossiers" in first and "Page 1 sur 2" in first
    assert "-A1-000000<" in first and "-A1-000049<" in first and "-A1-000050<" not in first
    second = page(client.get("/portail/?page=2"))
    assert "-A1-000050<" in second and "-A1-000059<" in second and "-A1-000049<" not in second
    assert "Page 1 sur 2" in page(client.get("/portail/?page=%C2%B2"))  # "²": the first page


def test_time_left_in_plain_french():
    assert time_left(DEADLINE, DEADLINE - timedelta(days=12, hours=3)) == "plus que 12 jours"
    assert time_left(DEADLINE, DEADLINE - timedelta(hours=30)) == "plus qu'un jour"
    assert time_left(DEADLINE, DEADLINE - timedelta(hours=5)) == "plus que 5 heures"
    assert time_left(DEADLINE, DEADLINE - timedelta(minutes=20)) == "plus que 20 minutes"
    assert time_left(DEADLINE, DEADLINE) == "date limite dépassée"


def test_staff_are_sent_to_the_back_office(client, session):
    factories.log_in(client, factories.user("instructor"))
    session.commit()
    response = client.get("/portail/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/instruction/")


def test_applicants_land_on_the_portal_after_login(client, session):
    user = applicant(session)
    response = client.post("/connexion", data={"email": user.email, "password": factories.PASSWORD})
    assert response.headers["Location"] == "/portail/"
    assert "Espace demandeur" in page(client.get("/"))


# --- drafts --------------------------------------------------------------------------------------


def test_double_creation_leaves_one_draft(client, session):
    user = factories.log_in(client, applicant(session))
    first = create(client, 1, title="Ordinateur de la mairie")
    second = create(client, 1, title="Ordinateur de la mairie")
    drafts = session.scalars(select(Dossier).where(Dossier.collectivite_id == user.collectivite_id)).all()
    assert len(drafts) == 1
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"] == f"/portail/dossiers/{drafts[0].id}"
    assert "déjà créé" in page(client.get(second.headers["Location"]))
    assert drafts[0].title == "Ordinateur de la mairie" and drafts[0].state == "draft"
    assert drafts[0].created_by_id == user.id
    # A new form (a new token) is a new dossier.
    create(client, 1, token="jeton-de-formulaire-0002")
    assert session.scalar(select(func.count()).select_from(Dossier)
                          .where(Dossier.collectivite_id == user.collectivite_id)) == 2


def test_no_draft_for_an_aid_the_collectivite_cannot_ask_for(client, session):
    factories.log_in(client, applicant(session))
    response = create(client, 2)
    assert response.status_code == 409 and "réservée aux EPCI" in page(response)
    assert session.scalar(select(func.count()).select_from(Dossier)) == 0


def test_no_draft_after_the_deadline(client, session, frozen_clock):
    factories.log_in(client, applicant(session))
    frozen_clock["now"] = DEADLINE
    response = create(client, 1)
    assert response.status_code == 409 and "Date limite dépassée" in page(response)
    assert session.scalar(select(func.count()).select_from(Dossier)) == 0


def test_a_forged_token_is_refused(client, session):
    factories.log_in(client, applicant(session))
    assert create(client, 1, token="x").status_code == 400
    assert create(client, 7, token="jeton-de-formulaire-0003").status_code == 400


# --- expense lines -------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("1200", "1200.00"), ("1 234,56", "1234.56"), ("1\u00a0234,5", "1234.50"), ("1234.56", "1234.56"),
    ("12 000 €", "12000.00"), ("0,01", "0.01"),
])
def test_amounts_are_parsed_as_decimal(text, expected):
    value = parse_amount(text)
    assert isinstance(value, Decimal) and value == Decimal(expected)


@pytest.mark.parametrize("text, message", [
    ("", "Indiquez le montant"), ("-5", "négatif"), ("12,345", "deux chiffres"), ("1.234,56", "milliers"),
    ("douze", "n'est pas un montant"), ("0", "supérieur à zéro"), ("1e5", "n'est pas un montant"),
    ("NaN", "n'est pas un montant"), ("999999999999", "trop élevé"),
])
def test_bad_amounts_get_a_french_message(text, message):
    with pytest.raises(ValueError, match=message):
        parse_amount(text)


def test_add_edit_and_remove_a_line(client, session):
    user = factories.log_in(client, applicant(session))
    dossier = draft_of(session, user)
    response = client.post(f"/portail/dossiers/{dossier.id}/depenses", data={
        "category": "licence", "label": "Suite bureautique", "amount_ht": "900,00", "pack": "3", "months": "48"})
    assert response.status_code == 302
    line = session.scalar(select(ExpenseLine).where(ExpenseLine.dossier_id == dossier.id))
    assert (line.category, line.amount_ht, line.pack, line.months) == ("licence", Decimal("900.00"), 3, 48)

    edit = client.get(f"/portail/dossiers/{dossier.id}/depenses/{line.id}")
    assert edit.status_code == 200 and 'value="900,00"' in page(edit)
    response = client.post(f"/portail/dossiers/{dossier.id}/depenses/{line.id}", data={
        "category": "equipement", "label": "Écran", "amount_ht": "250", "pack": "2", "months": "12"})
    assert response.status_code == 302
    session.refresh(line)
    assert (line.category, line.label, line.amount_ht, line.pack, line.months) == \
           ("equipement", "Écran", Decimal("250.00"), 2, None)

    # Removing asks first, in the page (a confirmation step, no script dialog).
    shown = page(client.get(f"/portail/dossiers/{dossier.id}"))
    step = re.search(r'<details class="confirm-step" data-testid="remove-line-1">(.*?)</details>', shown, re.S)
    assert step is not None and "Supprimer la dépense « Écran » ?" in step.group(1)
    assert f'action="/portail/dossiers/{dossier.id}/depenses/{line.id}/supprimer"' in step.group(1)
    assert "data-confirm" not in shown
    line_id = line.id
    response = client.post(f"/portail/dossiers/{dossier.id}/depenses/{line_id}/supprimer")
    assert response.status_code == 302
    assert session.scalar(select(func.count()).select_from(ExpenseLine)
                          .where(ExpenseLine.dossier_id == dossier.id)) == 0
    again = client.post(f"/portail/dossiers/{dossier.id}/depenses/{line_id}/supprimer")
    assert again.status_code == 302  # a double click is not an error


@pytest.mark.parametrize("data, message", [
    ({"category": "cablage", "label": "Câblage", "amount_ht": "100", "pack": "1"}, "pas éligible à cette aide"),
    ({"category": "equipement", "label": "PC", "amount_ht": "100"}, "Choisissez le pack"),
    ({"category": "equipement", "label": "PC", "amount_ht": "100", "pack": "9"}, "Choisissez le pack"),
    ({"category": "licence", "label": "Licence", "amount_ht": "100", "pack": "3"}, "durée de la licence"),
    ({"category": "licence", "label": "Licence", "amount_ht": "100", "pack": "3", "months": "trois"}, "nombre entier de mois"),
    ({"category": "equipement", "label": "", "amount_ht": "100", "pack": "1"}, "Décrivez la dépense"),
    ({"category": "equipement", "label": "PC", "amount_ht": "100,123", "pack": "1"}, "deux chiffres"),
    ({"category": "", "label": "PC", "amount_ht": "100", "pack": "1"}, "Choisissez la catégorie"),
])
def test_bad_lines_are_refused_with_french_messages(client, session, data, message):
    user = factories.log_in(client, applicant(session))
    dossier = draft_of(session, user)
    response = client.post(f"/portail/dossiers/{dossier.id}/depenses", data=data)
    assert response.status_code == 400 and message in page(response)
    assert session.scalar(select(func.count()).select_from(ExpenseLine)) == 0
    if data.get("amount_ht"):
        assert f'value="{data["amount_ht"]}"' in page(response)  # what was typed is kept


def test_aids_without_packs_have_no_pack_field(client, session):
    user = factories.log_in(client, applicant(session, factories.epci()))
    dossier = draft_of(session, user, aid=4)
    html = page(client.get(f"/portail/dossiers/{dossier.id}"))
    assert 'name="pack"' not in html and 'name="months"' not in html and "Travaux de câblage" in html
    response = client.post(f"/portail/dossiers/{dossier.id}/depenses", data={
        "category": "cablage", "label": "Câblage de l'école", "amount_ht": "12 000,00"})
    assert response.status_code == 302
    assert session.scalar(select(ExpenseLine.amount_ht)) == Decimal("12000.00")


def test_lines_are_read_only_once_submitted(client, session):
    dossier = factories.dossier("received", aid=1)
    factories.log_in(client, factories.applicant_of(dossier.collectivite))
    session.commit()
    line = dossier.lines[0]
    response = client.post(f"/portail/dossiers/{dossier.id}/depenses", data=EQUIPMENT)
    assert response.status_code == 409 and "ne peut plus être modifié" in page(response)
    assert client.get(f"/portail/dossiers/{dossier.id}/depenses/{line.id}").status_code == 302
    assert client.post(f"/portail/dossiers/{dossier.id}/depenses/{line.id}/supprimer").status_code == 409
    session.expire_all()
    assert len(session.get(Dossier, dossier.id).lines) == 1
    assert 'name="label"' not in page(client.get(f"/portail/dossiers/{dossier.id}"))


# --- estimation ----------------------------------------------------------------------------------


def test_the_page_shows_the_estimation_and_what_is_missing(client, session):
    user = factories.log_in(client, applicant(session))
    dossier = draft_of(session, user)
    html = page(client.get(f"/portail/dossiers/{dossier.id}"))
    assert "Ajoutez au moins une ligne de dépense." in html
    services.add_line(dossier, category="equipement", label="Ordinateur", amount_ht=Decimal("1200.00"), pack=1)
    session.commit()
    html = page(client.get(f"/portail/dossiers/{dossier.id}"))
    estimation = re.search(r'data-testid="estimation".*?</section>', html, re.S).group(0)
    assert "1 000,00 €" in estimation and "1 200,00 € HT" in estimation
    problems = re.search(r'data-testid="problems".*?</ul>', html, re.S).group(0)
    assert "Joignez une facture ou un devis à chaque ligne" in problems and "« Ordinateur »" in problems


def test_estimation_endpoint_returns_the_evaluation_as_json(client, session):
    user = factories.log_in(client, applicant(session))
    dossier = draft_of(session, user, lines=[EQUIPMENT])
    data = client.get(f"/portail/dossiers/{dossier.id}/estimation").get_json()
    assert data["eligible"] is True and data["amount"] == "1000.00" and data["with_candidate"] is False
    assert data["amount_display"] == "1\u00a0000,00\u00a0€"
    # The line being typed: a 48-month licence of 900 € in pack 3 counts for 675 €.
    data = client.get(f"/portail/dossiers/{dossier.id}/estimation", query_string={
        "category": "licence", "amount_ht": "900,00", "pack": "3", "months": "48"}).get_json()
    assert data["with_candidate"] is True and data["amount"] == "1675.00"
    assert any(f["code"] == "expense.licence_prorated" for f in data["findings"])
    data = client.get(f"/portail/dossiers/{dossier.id}/estimation", query_string={
        "category": "equipement", "amount_ht": "douze"}).get_json()
    assert data["with_candidate"] is False and "n'est pas un montant" in data["candidate_error"]
    assert data["amount"] == "1000.00"


# --- submission ----------------------------------------------------------------------------------


def submit(client, dossier):
    return client.post(f"/portail/dossiers/{dossier.id}/deposer")


def test_submission_says_precisely_what_is_missing(client, session):
    user = factories.log_in(client, applicant(session))
    dossier = draft_of(session, user)
    services.add_line(dossier, category="equipement", label="Ordinateur", amount_ht=Decimal("1200.00"), pack=1)
    session.commit()
    response = submit(client, dossier)
    assert response.status_code == 409
    assert "Joignez une facture ou un devis à chaque ligne de dépense (manquant : « Ordinateur »)" in page(response)
    session.refresh(dossier)
    assert dossier.state == "draft"


def test_submission_refused_when_the_rules_say_no(client, session):
    user = factories.log_in(client, applicant(session))
    dossier = draft_of(session, user, lines=[{**EQUIPMENT, "pack": None}])  # no pack: no eligible base
    response = submit(client, dossier)
    assert response.status_code == 409 and "Aucune dépense éligible" in page(response)


def test_double_submission_leaves_one_submission_event(client, session):
    user = factories.log_in(client, applicant(session))
    dossier = draft_of(session, user, lines=[EQUIPMENT])
    first, second = submit(client, dossier), submit(client, dossier)
    assert first.status_code == second.status_code == 302
    assert "déjà déposé" in page(client.get(second.headers["Location"]))
    events = session.scalars(select(AuditEvent).where(AuditEvent.dossier_id == dossier.id,
                                                      AuditEvent.action == "submit")).all()
    assert len(events) == 1
    session.refresh(dossier)
    assert dossier.state == "received" and dossier.submitted_at == NOW
    assert dossier.requested_amount == Decimal("1000.00")


def test_submission_accepted_until_the_last_second_of_the_deadline(client, session, frozen_clock):
    user = factories.log_in(client, applicant(session))
    dossier = draft_of(session, user, lines=[EQUIPMENT])
    frozen_clock["now"] = DEADLINE - timedelta(seconds=1)  # 30 June 2027, 23:59:59 in Paris
    assert submit(client, dossier).status_code == 302
    session.refresh(dossier)
    assert dossier.state == "received"


def test_submission_refused_after_the_deadline(client, session, frozen_clock):
    user = factories.log_in(client, applicant(session))
    dossier = draft_of(session, user, lines=[EQUIPMENT])
    frozen_clock["now"] = DEADLINE  # 1 July 2027, 00:00 in Paris
    html = page(client.get(f"/portail/dossiers/{dossier.id}"))
    assert "Date limite dépassée" in html
    response = submit(client, dossier)
    assert response.status_code == 409
    assert "Date limite dépassée : les dépôts étaient possibles jusqu'au 30 juin 2027 inclus." in page(response)
    session.refresh(dossier)
    assert dossier.state == "draft" and dossier.submitted_at is None


# --- after submission: documents requested, withdrawal, decision ---------------------------------


def test_answer_a_request_for_documents_and_resubmit(client, session, tmp_path):
    dossier = factories.dossier("incomplete", aid=1)
    user = factories.log_in(client, factories.applicant_of(dossier.collectivite))
    session.commit()
    html = page(client.get(f"/portail/dossiers/{dossier.id}"))
    assert "Merci de joindre la facture signée." in html and "Renvoyer le dossier complété" in html
    response = client.post(f"/portail/dossiers/{dossier.id}/completer", data={
        "message": "Voici la facture signée.", "line_id": str(dossier.lines[0].id),
        "files": (io.BytesIO(factories.pdf_bytes("signée")), "facture-signee.pdf")},
        content_type="multipart/form-data")
    assert response.status_code == 302
    session.expire_all()
    dossier = session.get(Dossier, dossier.id)
    assert dossier.state == "received"
    assert dossier.messages[-1].body == "Voici la facture signée." and dossier.messages[-1].author_id == user.id
    assert [d.original_name for d in dossier.lines[0].documents][-1] == "facture-signee.pdf"
    again = client.post(f"/portail/dossiers/{dossier.id}/completer", data={"message": "Voici la facture."})
    assert again.status_code == 302 and "déjà été renvoyé" in page(client.get(again.headers["Location"]))
    assert len([e for e in dossier.events if e.action == "resubmit"]) == 1


def test_a_refused_file_blocks_the_answer_and_nothing_is_stored(client, session, app):
    dossier = factories.dossier("incomplete", aid=1)
    factories.log_in(client, factories.applicant_of(dossier.collectivite))
    session.commit()
    documents_before = session.scalar(select(func.count()).select_from(Document))
    response = client.post(f"/portail/dossiers/{dossier.id}/completer", data={
        "message": "Voici les pièces.",
        "files": [(io.BytesIO(factories.pdf_bytes()), "bonne.pdf"), (io.BytesIO(b"<html>"), "piege.pdf")]},
        content_type="multipart/form-data")
    assert response.status_code == 400
    assert "« piege.pdf » refusé" in page(response) and "Rien n'a été envoyé" in page(response)
    assert session.scalar(select(func.count()).select_from(Document)) == documents_before
    session.refresh(dossier)
    assert dossier.state == "incomplete"


def test_an_empty_answer_is_refused(client, session):
    dossier = factories.dossier("incomplete", aid=1)
    factories.log_in(client, factories.applicant_of(dossier.collectivite))
    session.commit()
    response = client.post(f"/portail/dossiers/{dossier.id}/completer", data={"message": " "})
    assert response.status_code == 400 and "écrivez un message ou joignez une pièce" in page(response)


def test_withdraw_with_a_reason(client, session):
    dossier = factories.dossier("received", aid=1)
    factories.log_in(client, factories.applicant_of(dossier.collectivite))
    session.commit()
    response = client.post(f"/portail/dossiers/{dossier.id}/retirer", data={"reason": ""})
    assert response.status_code == 400 and "Indiquez pourquoi" in page(response)
    response = client.post(f"/portail/dossiers/{dossier.id}/retirer", data={"reason": "Projet abandonné"})
    assert response.status_code == 302
    again = client.post(f"/portail/dossiers/{dossier.id}/retirer", data={"reason": "Projet abandonné"})
    assert again.status_code == 302
    session.refresh(dossier)
    assert dossier.state == "withdrawn"
    html = page(client.get(f"/portail/dossiers/{dossier.id}"))
    assert "Dossier retiré" in html and "Motif : Projet abandonné" in html


def test_no_withdrawal_once_granted(client, session):
    dossier = factories.dossier("granted", aid=1)
    factories.log_in(client, factories.applicant_of(dossier.collectivite))
    session.commit()
    assert "Retirer le dossier" not in page(client.get(f"/portail/dossiers/{dossier.id}"))
    response = client.post(f"/portail/dossiers/{dossier.id}/retirer", data={"reason": "Trop tard"})
    assert response.status_code == 409
    session.refresh(dossier)
    assert dossier.state == "granted"


def test_the_dossier_page_explains_the_state_timeline_and_decision(client, session):
    dossier = factories.dossier("granted", aid=1)
    services.assign(dossier, factories.staff("instructor"), now=NOW)
    factories.log_in(client, factories.applicant_of(dossier.collectivite))
    session.commit()
    html = page(client.get(f"/portail/dossiers/{dossier.id}"))
    assert "La Région vous a attribué une subvention" in html
    decision = re.search(r'data-testid="decision".*?</section>', html, re.S).group(0)
    assert "1 000,00 €" in decision and "La lettre de décision est disponible dans la rubrique « Actes »." in decision
    timeline = re.search(r'data-testid="timeline".*?</ol>', html, re.S).group(0)
    for label in ("Brouillon créé", "Dossier déposé", "Dossier déclaré éligible", "Subvention attribuée"):
        assert label in timeline
    assert "assign" not in timeline and "Région Bourgogne-Franche-Comté" in timeline
    assert factories.staff("instructor").full_name not in html  # instructors stay anonymous


# --- who sees what -------------------------------------------------------------------------------


def test_an_applicant_never_sees_another_collectivites_dossier(client, session):
    dossier = factories.dossier("draft", aid=2)  # the EPCI's, with a line and a document
    line, document = dossier.lines[0], dossier.documents[0]
    factories.log_in(client, applicant(session))  # an agent of Agencourt
    base = f"/portail/dossiers/{dossier.id}"
    for url in (base, f"{base}/estimation", f"{base}/depenses/{line.id}",
                f"/documents/{document.id}/telecharger", f"/documents/{document.id}/apercu"):
        assert client.get(url).status_code == 404, url
    for url in (f"{base}/deposer", f"{base}/depenses", f"{base}/depenses/{line.id}/supprimer",
                f"{base}/retirer", f"{base}/completer", f"{base}/intitule", f"{base}/depenses/{line.id}/pieces"):
        assert client.post(url, data={"reason": "x", "message": "x"}).status_code == 404, url
    session.refresh(dossier)
    assert dossier.state == "draft" and len(dossier.lines) == 1


def test_agents_of_one_collectivite_share_its_dossiers(client, session):
    dossier = factories.dossier("draft", aid=1)
    colleague = applicant(session, dossier.collectivite)
    factories.log_in(client, colleague)
    assert client.get(f"/portail/dossiers/{dossier.id}").status_code == 200
    assert submit(client, dossier).status_code == 302


def test_staff_see_every_dossier_read_only(client, session):
    dossier = factories.dossier("received", aid=1)
    factories.log_in(client, factories.staff("instructor"))
    session.commit()
    response = client.get(f"/portail/dossiers/{dossier.id}")
    assert response.status_code == 200 and "lecture seule" in page(response)
    assert client.post(f"/portail/dossiers/{dossier.id}/retirer", data={"reason": "x"}).status_code == 403


def test_forms_need_their_csrf_token(csrf_client, session):
    user = applicant(session)
    page_ = csrf_client.get("/connexion").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page_).group(1)
    csrf_client.post("/connexion", data={"email": user.email, "password": factories.PASSWORD, "csrf_token": token})
    assert create(csrf_client, 1).status_code == 400
    html = csrf_client.get("/portail/").get_data(as_text=True)
    form = re.search(r'<form method="post" action="/portail/dossiers".*?</form>', html, re.S).group(0)
    fields = dict(re.findall(r'name="(csrf_token|aid_number|client_token)" value="([^"]+)"', form))
    assert csrf_client.post("/portail/dossiers", data=fields).status_code == 302


def test_no_answer_without_a_request(client, session):
    user = factories.log_in(client, applicant(session))
    dossier = draft_of(session, user, lines=[EQUIPMENT])
    response = client.post(f"/portail/dossiers/{dossier.id}/completer", data={"message": "Bonjour"})
    assert response.status_code == 409 and "Aucun complément n'est demandé" in page(response)


def test_documents_already_received_stay_when_documents_are_requested(client, session, app):
    dossier = factories.dossier("incomplete", aid=1)
    line, received = dossier.lines[0], dossier.documents[0]
    received.uploaded_at = NOW - timedelta(hours=1)  # sent with the dossier, before the request
    factories.log_in(client, factories.applicant_of(dossier.collectivite))
    session.commit()
    response = client.post(f"/portail/dossiers/{dossier.id}/pieces/{received.id}/supprimer")
    assert response.status_code == 409 and "déjà été transmise à la Région" in page(response)
    # A piece added since the request may be taken back.
    upload(client, dossier, line, "nouvelle.pdf")
    added = session.scalar(select(Document).where(Document.original_name == "nouvelle.pdf"))
    assert client.post(f"/portail/dossiers/{dossier.id}/pieces/{added.id}/supprimer").status_code == 302
    # Removing the line keeps what the Region received, detached from the line.
    assert client.post(f"/portail/dossiers/{dossier.id}/depenses/{line.id}/supprimer").status_code == 302
    session.expire_all()
    kept = session.get(Document, received.id)
    assert kept is not None and kept.line_id is None
    assert "Autres pièces du dossier" in page(client.get(f"/portail/dossiers/{dossier.id}"))
