"""The dossier page of the back-office: what it shows, every action through HTTP (allowed and
refused), payments, and previous / next within the filtered queue."""

from __future__ import annotations

import html as html_lib
import re
import secrets
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from instruction.dossiers import services
from instruction.dossiers.evaluation import evaluate_dossier
from instruction.dossiers.models import Dossier, Envelope
from tests import factories
from tests.factories import NOW

NBSP = "\u00a0"


def text(response) -> str:
    """The page as a person reads it: entities decoded, no-break spaces as spaces."""
    return html_lib.unescape(response.get_data(as_text=True)).replace(NBSP, " ")


def page(client, dossier, **args):
    response = client.get(f"/instruction/dossiers/{dossier.id}", query_string=args)
    assert response.status_code == 200, response.get_data(as_text=True)[:3000]
    return text(response)


MONEY_ACTIONS = ("grant", "record_payment", "record_final_payment", "cancel_grant")


def act(client, dossier, action, data=None, **args):
    """POST an action; a form that moves money gets a fresh one-time token unless one is given."""
    data = dict(data or {})
    if action in MONEY_ACTIONS:
        data.setdefault("token", secrets.token_urlsafe(24))
    return client.post(f"/instruction/dossiers/{dossier.id}/actions/{action}", data=data,
                       query_string=args)


def section(page_text: str, testid: str) -> str:
    start = page_text.index(f'data-testid="{testid}"')
    return page_text[start:page_text.index("</section>", start)]


def figure(page_text: str, testid: str) -> str:
    row = re.search(rf'data-testid="{testid}">.*?<td[^>]*>(.*?)</td>', page_text, re.S).group(1)
    return re.sub(r"<[^>]+>", "", row).split("dépasse")[0].strip()


# --- what the page shows -------------------------------------------------------------------------


def test_page_shows_the_applicant_its_lines_and_invoices(client, session):
    commune = factories.commune("21622")  # Tart-le-Bas, 241 inhabitants, CC de la Plaine Dijonnaise
    dossier = factories.dossier("received", aid=1, collectivite=commune, lines=[
        {"category": "licence", "label": "Suite bureautique", "amount_ht": "900.00", "pack": 3, "months": 48}])
    document = dossier.lines[0].documents[0]
    factories.staff_logged_in(client, session)
    body = page(client, dossier)
    assert "Tart-le-Bas" in body and "Code INSEE" in body and "21622" in body
    population = section(body.replace("</dd>", "</section>"), "population")
    assert "241 habitants" in population and "figée au dépôt" in population
    assert dossier.population_source in population and str(dossier.population_year) in population
    epci = section(body.replace("</dd>", "</section>"), "epci")
    assert "CC de la Plaine Dijonnaise (200000925)" in epci and "22 152 habitants" in epci
    assert "/instruction/epci/200000925?campagne=demo" in epci
    lines = section(body.replace("</table>", "</section>"), "lines")
    for expected in ("Licence", "Suite bureautique", "900,00 €", "Pack 3", "48 mois"):
        assert expected in lines, expected
    assert f'href="/documents/{document.id}/apercu"' in lines
    assert f'href="/documents/{document.id}/telecharger"' in lines


def test_live_evaluation_lists_every_finding_then_the_frozen_one(client, session):
    dossier = factories.dossier("received", aid=2)
    decision = evaluate_dossier(dossier, NOW)
    factories.staff_logged_in(client, session)
    evaluation = section(page(client, dossier), "evaluation")
    assert "calculée maintenant" in evaluation and "Résultat : éligible" in evaluation
    for finding in decision.findings:
        assert f'data-finding="{finding.code}"' in evaluation
        assert finding.message.replace(NBSP, " ") in evaluation
    assert figure(evaluation, "eligible-base") == "10 000,00 €"
    assert figure(evaluation, "computed-amount") == "4 000,00 €"
    assert figure(evaluation, "cap-limit") == "30 000,00 €"

    assert act(client, dossier, "declare_eligible").status_code == 302
    evaluation = section(page(client, dossier), "evaluation")
    assert "figée lorsque le dossier a été déclaré éligible" in evaluation
    assert "règles de la campagne" in evaluation
    assert dossier.evaluation["parameters_version"] not in evaluation  # an internal name, never shown


def test_failed_findings_are_shown_as_such(client, session):
    dossier = factories.dossier("received", aid=2, lines=[
        {"category": "equipement", "label": "Serveur", "amount_ht": "10000.00"},
        {"category": "cablage", "label": "Câblage", "amount_ht": "5000.00"}])  # not eligible for aid 2
    factories.staff_logged_in(client, session)
    evaluation = section(page(client, dossier), "evaluation")
    assert 'data-ok="non"' in evaluation and "Réduction :" in evaluation


def test_envelope_figures_with_pending_demand(client, session):
    big = [{"category": "equipement", "label": "Gros serveur", "amount_ht": "70000.00"}]
    factories.dossier("received", aid=2)  # asks 4,000 € (submitted while the envelope was empty)
    factories.dossier("granted", aid=2, lines=big)  # 28,000 € consumed of 30,000 €
    factories.dossier("eligible", aid=2, collectivite=factories.epci("200070894"))  # another EPCI
    dossier = factories.dossier("eligible", aid=2)  # computed with the cap in view: 2,000 €
    assert dossier.computed_amount == Decimal("2000.00")
    factories.staff_logged_in(client, session)
    envelope = section(page(client, dossier), "envelope")
    assert "par EPCI, tous ses dossiers ensemble" in envelope and "epci:200000925" not in envelope
    assert figure(envelope, "envelope-limit") == "30 000,00 €"
    assert figure(envelope, "envelope-consumed") == "28 000,00 €"
    assert figure(envelope, "envelope-remaining") == "2 000,00 €"
    assert figure(envelope, "envelope-pending") == "4 000,00 €"
    assert "Demandes en attente des autres dossiers (1)" in envelope
    assert figure(envelope, "envelope-after-pending") == "-2 000,00 €"
    assert figure(envelope, "envelope-after-grant") == "0,00 €"


def test_envelope_before_any_grant_takes_the_cap_from_the_parameters(client, session):
    dossier = factories.dossier("received", aid=4)
    factories.staff_logged_in(client, session)
    envelope = section(page(client, dossier), "envelope")
    assert "à l'échelle de l'EPCI, de ses communes et de ses SIVOS" in envelope.replace("&#39;", "'")
    assert "epci-territoire" not in envelope  # an internal name, never shown
    assert figure(envelope, "envelope-limit") == "40 000,00 €"
    assert figure(envelope, "envelope-consumed") == "0,00 €"
    assert figure(envelope, "envelope-after-grant") == "35 200,00 €"


def test_audit_trail_and_messages(client, session):
    dossier = factories.dossier("incomplete")
    instructor = factories.staff("instructor")
    factories.staff_logged_in(client, session)
    body = page(client, dossier)
    audit = section(body.replace("</table>", "</section>"), "audit")
    assert "Création du brouillon" in audit and "Déposer le dossier" in audit
    assert "Reçu → Pièces demandées" in audit and "Demander des pièces" in audit
    assert "Merci de joindre la facture signée." in audit
    assert "28 novembre 2026 à 11:00" in audit  # 10:00 UTC, shown in Europe/Paris
    assert instructor.full_name in audit
    assert "Merci de joindre la facture signée." in body[body.index('id="messages"'):]


def test_actions_offered_to_an_instructor_on_a_received_dossier(client, session):
    dossier = factories.dossier("received")
    factories.staff_logged_in(client, session)
    body = page(client, dossier)
    for action in ("request_documents", "declare_eligible", "declare_ineligible", "refuse", "assign"):
        assert f'data-action="{action}"' in body, action
    assert 'id="refuse-reason"' in body and 'for="refuse-reason"' in body
    assert 'data-action="grant"' not in body and 'data-action="record_payment"' not in body


def test_unavailable_actions_are_shown_disabled_with_their_reason(client, session):
    dossier = factories.dossier("granted")
    services.record_payment(dossier, factories.staff("finance"), amount=Decimal("100.00"),
                            paid_on=NOW.date(), reference="M-1", final=False, now=NOW)
    factories.staff_logged_in(client, session, "admin")
    body = page(client, dossier)
    unavailable = body[body.index('data-unavailable="cancel_grant"'):]
    assert "disabled" in unavailable[:300]
    assert "Des versements ont déjà été enregistrés sur ce dossier." in unavailable[:600]


def test_an_expired_dossier_is_shown_without_envelope(client, session):
    dossier = factories.dossier("draft")
    services.expire(dossier, None, now=datetime(2027, 7, 1, 8, 0, tzinfo=UTC))
    factories.staff_logged_in(client, session)
    body = page(client, dossier, onglet="clos")
    assert "Expiré" in body and "Dossier 1 sur 1" in body
    assert 'data-testid="envelope"' not in body  # never submitted: no cap scope
    assert "Aucune action n'est possible pour votre rôle" in body


def test_draft_and_unknown_dossiers_are_404(client, session):
    draft = factories.dossier("draft")
    factories.staff_logged_in(client, session)
    assert client.get(f"/instruction/dossiers/{draft.id}").status_code == 404
    assert client.get("/instruction/dossiers/999999").status_code == 404
    assert client.get("/instruction/dossiers/99999999999999999999").status_code == 404
    assert client.post("/instruction/dossiers/99999999999999999999/actions/refuse").status_code == 404
    assert act(client, draft, "declare_eligible").status_code == 404


# --- actions through HTTP ------------------------------------------------------------------------


def test_declare_eligible_then_grant_the_default_amount(client, session):
    dossier = factories.dossier("received")
    factories.staff_logged_in(client, session)
    response = act(client, dossier, "declare_eligible")
    assert response.status_code == 302 and response.headers["Location"] == f"/instruction/dossiers/{dossier.id}"
    body = text(client.get(response.headers["Location"]))
    assert "Le dossier est déclaré éligible" in body
    assert dossier.state == "eligible" and dossier.evaluation is not None
    assert 'value="4000,00"' in body  # the grant form proposes the computed amount
    response = act(client, dossier, "grant", {"amount": "4000,00"})
    assert response.status_code == 302
    assert "Subvention de 4 000,00 € attribuée" in text(client.get(response.headers["Location"]))
    assert dossier.state == "granted" and dossier.granted_amount == Decimal("4000.00")


@pytest.mark.parametrize("typed, expected", [("1 500,5", "1500.50"), ("1500.25", "1500.25"),
                                             ("2\u00a0000 €", "2000.00"), ("3999", "3999.00")])
def test_grant_amount_with_a_comma_or_a_dot(client, session, typed, expected):
    dossier = factories.dossier("eligible")
    factories.staff_logged_in(client, session)
    assert act(client, dossier, "grant", {"amount": typed}).status_code == 302
    assert dossier.granted_amount == Decimal(expected)


@pytest.mark.parametrize("typed, message", [
    ("abc", "n'est pas un montant"),
    ("12.345", "au plus deux chiffres après la virgule"),
    ("-10", "ne peut pas être négatif"),
    ("1e3", "n'est pas un montant"),
    ("", "Indiquez le montant attribué."),
    ("0", "Le montant doit être supérieur à zéro"),
    ("4000,01", "ne peut pas dépasser le montant calculé (4 000,00 €)"),
])
def test_bad_grant_amount_is_a_400_with_the_message(client, session, typed, message):
    dossier = factories.dossier("eligible")
    factories.staff_logged_in(client, session)
    response = act(client, dossier, "grant", {"amount": typed})
    assert response.status_code == 400
    assert message in text(response)
    session.refresh(dossier)
    assert dossier.state == "eligible"


def test_grant_beyond_the_envelope_is_409_with_what_remains(client, session):
    big = factories.dossier("eligible", aid=2, lines=[{"category": "equipement", "label": "A", "amount_ht": "70000.00"}])
    dossier = factories.dossier("eligible", aid=2)  # computed 4,000 € while the envelope was empty
    services.grant(big, factories.staff(), now=NOW)  # 28,000 € of 30,000 €
    factories.staff_logged_in(client, session)
    response = act(client, dossier, "grant", {"amount": "4000,00"})
    assert response.status_code == 409
    body = text(response)
    assert "l'enveloppe ne peut plus recevoir que 2 000,00 €" in body
    assert 'data-testid="action-error"' in body and 'value="4000,00"' in body  # the input is kept
    session.refresh(dossier)
    assert dossier.state == "eligible"
    envelope = session.scalar(select(Envelope).where(Envelope.scope == "epci:200000925"))
    assert envelope.consumed == Decimal("28000.00")


def test_reason_is_required_where_the_table_says(client, session):
    dossier = factories.dossier("received")
    factories.staff_logged_in(client, session)
    response = act(client, dossier, "request_documents", {"reason": "   "})
    assert response.status_code == 400
    assert "Indiquez un motif" in text(response)
    assert dossier.state == "received"
    response = act(client, dossier, "request_documents", {"reason": "La facture n'est pas signée."})
    assert response.status_code == 302
    session.refresh(dossier)
    assert dossier.state == "incomplete" and dossier.messages[-1].body == "La facture n'est pas signée."


@pytest.mark.parametrize("action, state, target", [
    ("refuse", "received", "refused"),
    ("declare_ineligible", "eligible", "ineligible"),
])
def test_decisions_with_a_reason(client, session, action, state, target):
    dossier = factories.dossier(state)
    factories.staff_logged_in(client, session)
    response = act(client, dossier, action, {"reason": "Projet hors du champ de l'aide."})
    assert response.status_code == 302
    session.refresh(dossier)
    assert dossier.state == target and dossier.events[-1].reason == "Projet hors du champ de l'aide."
    assert "Projet hors du champ de l'aide." in page(client, dossier)


def test_admin_cancels_a_grant_and_reopens_a_refusal(client, session):
    granted = factories.dossier("granted")
    refused = factories.dossier("refused")
    factories.staff_logged_in(client, session, "admin")
    assert act(client, granted, "cancel_grant", {"reason": "Erreur de saisie"}).status_code == 302
    assert act(client, refused, "reopen", {"reason": "Recours gracieux accepté"}).status_code == 302
    session.refresh(granted)
    session.refresh(refused)
    assert granted.state == "eligible" and granted.granted_amount is None
    assert refused.state == "received"


def test_a_transition_from_the_wrong_state_is_409(client, session):
    dossier = factories.dossier("granted")
    factories.staff_logged_in(client, session)
    response = act(client, dossier, "declare_eligible")
    assert response.status_code == 409
    assert "Cette action n'est pas possible dans l'état actuel du dossier." in text(response)
    assert dossier.state == "granted"


@pytest.mark.parametrize("role, action, data", [
    ("finance", "grant", {"amount": "not even a number"}),
    ("finance", "declare_eligible", {}),
    ("finance", "refuse", {"reason": "x"}),
    ("instructor", "record_payment", {"amount": "10", "paid_on": "2026-11-21", "reference": "M"}),
    ("instructor", "record_final_payment", {}),
    ("instructor", "cancel_grant", {"reason": "x"}),
    ("instructor", "submit", {}),
    ("admin", "withdraw", {"reason": "x"}),
])
def test_an_action_the_role_may_not_take_is_403_whatever_is_sent(client, session, role, action, data):
    dossier = factories.dossier("eligible" if action not in ("record_payment", "record_final_payment",
                                                             "cancel_grant") else "granted")
    before = dossier.state
    factories.staff_logged_in(client, session, role)
    response = act(client, dossier, action, data)
    assert response.status_code == 403
    assert "Votre rôle ne permet pas cette action sur le dossier." in text(response)
    session.refresh(dossier)
    assert dossier.state == before


def test_unknown_action_is_404(client, session):
    dossier = factories.dossier("received")
    factories.staff_logged_in(client, session)
    assert act(client, dossier, "fly").status_code == 404
    assert client.get(f"/instruction/dossiers/{dossier.id}/actions/declare_eligible").status_code == 405


def test_expire_by_an_admin_on_a_submitted_dossier_is_409(client, session):
    dossier = factories.dossier("received")
    factories.staff_logged_in(client, session, "admin")
    assert act(client, dossier, "expire").status_code == 409


# --- payments (finance) --------------------------------------------------------------------------


def test_partial_then_over_then_final_payment(client, session):
    dossier = factories.dossier("granted")  # 4,000 € granted
    factories.staff_logged_in(client, session, "finance")
    body = page(client, dossier)
    assert 'data-action="record_payment"' in body and 'id="payment-final"' in body
    assert figure(section(body, "payments"), "left-to-pay") == "4 000,00 €"

    response = act(client, dossier, "record_payment", {"amount": "1 000,00", "paid_on": "2026-11-28",
                                                       "reference": "MANDAT-1"})
    assert response.status_code == 302
    assert "Versement de 1 000,00 € enregistré." in text(client.get(response.headers["Location"]))
    session.refresh(dossier)
    assert dossier.state == "granted" and dossier.paid_amount == Decimal("1000.00")

    response = act(client, dossier, "record_payment", {"amount": "3000,01", "paid_on": "2026-11-28",
                                                       "reference": "MANDAT-2"})
    assert response.status_code == 400
    assert ("Le versement dépasse le montant attribué : 4 000,00 € attribués, 1 000,00 € déjà versés, "
            "reste 3 000,00 €.") in text(response)
    session.refresh(dossier)
    assert dossier.paid_amount == Decimal("1000.00") and len(dossier.payments) == 1

    final = {"amount": "2500", "paid_on": "30/11/2026", "reference": "MANDAT-3", "final": "y"}
    response = act(client, dossier, "record_payment", final)  # below the grant: confirm first
    assert response.status_code == 200
    assert ("Ce versement final solde le dossier à 3 500,00 € pour 4 000,00 € attribués : 500,00 € "
            "seront rendus à l'enveloppe") in text(response)
    assert 'name="confirmed_release" type="hidden" value="500,00"' in response.get_data(as_text=True)
    session.refresh(dossier)
    assert dossier.state == "granted" and len(dossier.payments) == 1
    response = act(client, dossier, "record_payment", {**final, "confirmed_release": "500,00"})
    assert response.status_code == 302
    assert "Le dossier est soldé : 3 500,00 € versés au total." in text(client.get(response.headers["Location"]))
    session.refresh(dossier)
    assert dossier.state == "paid" and dossier.paid_amount == Decimal("3500.00")
    envelope = session.scalar(select(Envelope).where(Envelope.scope == "epci:200000925"))
    assert envelope.consumed == Decimal("3500.00")  # the unpaid 500 € released
    payments = section(page(client, dossier), "payments")
    assert "MANDAT-1" in payments and "MANDAT-3" in payments and "30 novembre 2026" in payments


def test_final_payment_route_marks_the_dossier_paid(client, session):
    dossier = factories.dossier("granted")
    factories.staff_logged_in(client, session, "finance")
    response = act(client, dossier, "record_final_payment", {"amount": "100", "paid_on": "2026-11-28",
                                                             "reference": "SOLDE",
                                                             "confirmed_release": "3 900,00"})
    assert response.status_code == 302
    session.refresh(dossier)
    assert dossier.state == "paid" and dossier.paid_amount == Decimal("100.00")


@pytest.mark.parametrize("data, message", [
    ({"amount": "100", "paid_on": "", "reference": "M"}, "Indiquez la date du versement."),
    ({"amount": "100", "paid_on": "31/02/2026", "reference": "M"}, "n'est pas une date valide"),
    ({"amount": "100", "paid_on": "2026-11-21", "reference": " "}, "Indiquez la référence du versement"),
    ({"amount": "cent", "paid_on": "2026-11-21", "reference": "M"}, "n'est pas un montant"),
])
def test_bad_payment_input_is_a_400_in_french(client, session, data, message):
    dossier = factories.dossier("granted")
    factories.staff_logged_in(client, session, "finance")
    response = act(client, dossier, "record_payment", data)
    assert response.status_code == 400
    assert message in text(response)
    session.refresh(dossier)
    assert dossier.paid_amount is None


# --- previous / next within the queue ------------------------------------------------------------


def test_previous_and_next_follow_the_filtered_sorted_queue(client, session):
    first, second, third = (factories.dossier("received") for _ in range(3))
    factories.dossier("received", aid=4)  # filtered out by aide=2
    factories.staff_logged_in(client, session)
    args = {"onglet": "a-instruire", "aide": "2", "tri": "reference", "ordre": "desc"}
    raw = client.get(f"/instruction/dossiers/{second.id}", query_string=args).get_data(as_text=True)
    nav = raw[raw.index('data-testid="queue-nav"'):raw.index("</nav>", raw.index('data-testid="queue-nav"'))]
    nav = nav.replace("&amp;", "&")
    assert "Dossier 2 sur 3" in nav
    assert re.search(rf'rel="prev"[^>]*href="/instruction/dossiers/{third.id}\?[^"]*aide=2', nav)
    assert re.search(rf'rel="next"[^>]*href="/instruction/dossiers/{first.id}\?[^"]*ordre=desc', nav)
    last = page(client, first, **args)
    assert 'rel="next"' not in last and "Dossier 3 sur 3" in last
    # An action keeps the queue's parameters on the way back.
    response = act(client, second, "declare_eligible", **args)
    location = response.headers["Location"]
    assert location.startswith(f"/instruction/dossiers/{second.id}?") and "aide=2" in location


def test_a_dossier_outside_the_filtered_queue_has_no_neighbours(client, session):
    dossier = factories.dossier("granted")
    factories.staff_logged_in(client, session)
    body = page(client, dossier, onglet="a-instruire")
    assert "Ce dossier ne fait plus partie de la liste filtrée." in body
    assert 'rel="next"' not in body and 'rel="prev"' not in body
    assert 'data-testid="queue-nav"' in page(client, dossier)  # without the queue: just a link back


def test_back_link_returns_to_the_page_holding_the_dossier(client, session):
    factories.bulk_dossiers(60, states=("received",))
    factories.staff_logged_in(client, session)
    oldest = session.scalars(select(Dossier).order_by(Dossier.submitted_at.asc()).limit(1)).one()
    newest = session.scalars(select(Dossier).order_by(Dossier.submitted_at.desc()).limit(1)).one()
    body = page(client, newest, onglet="a-instruire")  # oldest first: the newest is 60th, page 2
    assert "Dossier 60 sur 60" in body
    assert 'href="/instruction/?onglet=a-instruire&page=2">← Retour à la liste' in body
    assert "Dossier 1 sur 60" in page(client, oldest, onglet="a-instruire")


# --- CSRF ----------------------------------------------------------------------------------------


def test_action_forms_carry_the_csrf_token(csrf_client, session):
    dossier = factories.dossier("received")
    user = factories.user("instructor")
    session.commit()
    login_page = csrf_client.get("/connexion").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page).group(1)
    csrf_client.post("/connexion", data={"email": user.email, "password": factories.PASSWORD,
                                         "csrf_token": token})
    assert act(csrf_client, dossier, "declare_eligible").status_code == 400  # no token
    assert dossier.state == "received"
    raw = csrf_client.get(f"/instruction/dossiers/{dossier.id}").get_data(as_text=True)
    form = raw[raw.index('data-action="declare_eligible"'):]
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form).group(1)
    assert act(csrf_client, dossier, "declare_eligible", {"csrf_token": token}).status_code == 302
    session.refresh(dossier)
    assert dossier.state == "eligible"
