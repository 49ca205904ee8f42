"""Payment requests (demandes de versement): the beneficiary asks, finance pays or returns, the
balance time limit lapses what was not asked. Amounts are computed by hand in the comments:
the factories grant aid 2 (40 % of eligible expenses) 4,000.00 € on 28 November 2026 (NOW),
against the envelope epci:200000925 (consumed 4,000.00 € after the grant)."""

from __future__ import annotations

import html as html_lib
import io
import re
import secrets
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from instruction.dossiers import services as dossier_services
from instruction.dossiers.models import AuditEvent, Document, Envelope, Payment
from instruction.extensions import db
from instruction.notifications import jobs
from instruction.notifications.models import OutboxMessage
from instruction.payment_requests import services
from instruction.payment_requests.models import PaymentRequest, RealisedExpense
from tests import factories

TODAY = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)  # three days after the grant
PAID_ON = date(2026, 12, 1)


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    monkeypatch.setattr("instruction.clock.now", lambda: TODAY)


def text(response) -> str:
    """The page's words: tags dropped, spaces (no-break ones included) collapsed."""
    words = html_lib.unescape(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))
    return re.sub(r"\s+", " ", words.replace("\u00a0", " ").replace("\u202f", " ")).replace(" .", ".")


def consumed(session) -> Decimal:
    session.expire_all()
    return session.scalar(select(Envelope.consumed).where(Envelope.scope == "epci:200000925",
                                                          Envelope.aid_number == 2))


def agent_of(dossier):
    return factories.applicant_of(dossier.collectivite)


def request_with(dossier, kind: str, amounts: list[str], *, now: datetime = TODAY, send: bool = True):
    """A request of ``kind`` with one paid invoice per amount (equipment, HT), sent if ``send``."""
    agent = agent_of(dossier)
    request = services.start(dossier, agent, kind, now=now)
    for i, amount in enumerate(amounts, start=1):
        services.add_expense(request, agent, category="equipement", label=f"Matériel {i}",
                             amount_ht=Decimal(amount), pack=None, months=None,
                             invoice=(f"facture-{i}.pdf", factories.pdf_bytes(f"Facture {i} acquittee")),
                             max_bytes=5 * 1024 * 1024, now=now)
    if send:
        services.send(request, agent, attested=True, now=now)
    return request


def events(dossier, action: str) -> int:
    return db.session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.dossier_id == dossier.id,
                                                                     AuditEvent.action == action))


def outbox(kind: str, dossier=None) -> int:
    query = select(func.count(OutboxMessage.id)).where(OutboxMessage.kind == kind)
    if dossier is not None:
        query = query.where(OutboxMessage.dossier_id == dossier.id)
    return db.session.scalar(query)


# --- the balance, paid below the grant ----------------------------------------------------------


def test_a_balance_below_the_grant_is_paid_and_releases_the_rest(session):
    dossier = factories.dossier("granted")
    assert consumed(session) == Decimal("4000.00")
    request = request_with(dossier, "solde", ["6000.00", "2500.00"])
    # 40 % of 8,500.00 = 3,400.00 payable; 4,000.00 - 3,400.00 = 600.00 back to the envelope.
    assert request.status == "sent" and request.payable_amount == Decimal("3400.00")
    assert events(dossier, "send_payment_request") == 1 and outbox("send_payment_request", dossier) == 1
    finance = factories.staff("finance")
    with pytest.raises(dossier_services.ConfirmationRequired) as asked, session.begin_nested():
        services.pay(request, finance, amount=Decimal("3400.00"), paid_on=PAID_ON, reference="MDT-1",
                     now=TODAY)
    assert asked.value.release == Decimal("600.00")
    session.expire_all()
    assert dossier.paid_amount is None and request.status == "sent" and consumed(session) == Decimal("4000.00")
    services.pay(request, finance, amount=Decimal("3400.00"), paid_on=PAID_ON, reference="MDT-1",
                 now=TODAY, confirmed_release=Decimal("600.00"))
    session.expire_all()
    assert (dossier.state, dossier.paid_amount) == ("paid", Decimal("3400.00"))
    assert consumed(session) == Decimal("3400.00")
    assert request.status == "paid" and request.payment.amount == Decimal("3400.00") and request.payment.is_final
    assert events(dossier, "record_final_payment") == 1 and outbox("record_final_payment", dossier) == 1


def test_an_instalment_is_held_under_the_share_and_the_balance_pays_the_rest(session):
    dossier = factories.dossier("granted")
    finance = factories.staff("finance")
    first = request_with(dossier, "acompte", ["9000.00"])
    # 40 % of 9,000.00 = 3,600.00, but instalments stop at 80 % of 4,000.00 = 3,200.00.
    assert first.payable_amount == Decimal("3200.00")
    services.pay(first, finance, amount=Decimal("3200.00"), paid_on=PAID_ON, reference="AC-1", now=TODAY)
    assert (dossier.state, dossier.paid_amount) == ("granted", Decimal("3200.00"))
    # The balance takes up the instalment's expense (9,000.00, its invoice) and adds 1,000.00:
    # 40 % of 10,000.00 = 4,000.00 justified, 3,200.00 already paid: 800.00, nothing released.
    balance = request_with(dossier, "solde", ["1000.00"], send=False)
    assert [e.amount_ht for e in balance.expenses] == [Decimal("9000.00"), Decimal("1000.00")]
    assert balance.expenses[0].invoice_id == first.expenses[0].invoice_id
    services.send(balance, agent_of(dossier), attested=True, now=TODAY)
    assert balance.payable_amount == Decimal("800.00")
    services.pay(balance, finance, amount=Decimal("800.00"), paid_on=PAID_ON, reference="SO-1", now=TODAY)
    assert (dossier.state, dossier.paid_amount) == ("paid", Decimal("4000.00"))
    assert consumed(session) == Decimal("4000.00")


def test_paying_less_needs_a_reason_that_the_history_keeps(session):
    dossier = factories.dossier("granted")
    request = request_with(dossier, "acompte", ["5000.00"])  # 40 % of 5,000.00 = 2,000.00
    finance = factories.staff("finance")
    with pytest.raises(dossier_services.InvalidAction, match="indiquez le motif"):
        services.pay(request, finance, amount=Decimal("1500.00"), paid_on=PAID_ON, reference="R-1", now=TODAY)
    services.pay(request, finance, amount=Decimal("1500.00"), paid_on=PAID_ON, reference="R-1", now=TODAY,
                 reason="Facture n° 2 sans mention acquittée")
    assert dossier.paid_amount == Decimal("1500.00") and request.reduction_reason
    reason = session.scalar(select(func.replace(AuditEvent.reason, "\u202f", " ")).where(AuditEvent.dossier_id == dossier.id,
                                                            AuditEvent.action == "record_payment"))
    assert reason.replace("\u00a0", " ") == ("Versement de 1 500,00 € (R-1), versé le 1er décembre 2026 ; acompte demandé le "
                      "1er décembre 2026, réduit de 500,00 € : Facture n° 2 sans mention acquittée")


# --- the beneficiary's refusals: French, 4xx, nothing recorded -------------------------------------


def portal_post(client, dossier, path: str, data: dict | None = None, **kwargs):
    return client.post(f"/portail/dossiers/{dossier.id}/versement{path}", data=data or {}, **kwargs)


def agent_client(client, session, dossier):
    agent = agent_of(dossier)
    session.commit()
    factories.log_in(client, agent)
    return agent


def test_the_beneficiary_asks_for_the_balance_from_the_portal(client, session):
    dossier = factories.dossier("granted")
    agent_client(client, session, dossier)
    page = client.get(f"/portail/dossiers/{dossier.id}")
    assert "Demander un versement" in text(page) and "au plus tard le 28 novembre 2028" in text(page)
    assert portal_post(client, dossier, "", {"kind": "solde"}).status_code == 302
    request = session.scalar(select(PaymentRequest).where(PaymentRequest.dossier_id == dossier.id))
    response = portal_post(client, dossier, f"/{request.id}/depenses", {
        "category": "equipement", "label": "Serveur", "amount_ht": "6 000,00",
        "invoice": (io.BytesIO(factories.pdf_bytes()), "facture-serveur.pdf")},
        content_type="multipart/form-data")
    assert response.status_code == 302, text(response)[:3000]
    page = text(client.get(f"/portail/dossiers/{dossier.id}/versement"))
    assert "Montant à verser selon les règles de l'aide : 2 400,00 €" in page  # 40 % of 6,000.00
    response = portal_post(client, dossier, f"/{request.id}/envoyer", {"attest": "y"})
    assert response.status_code == 302
    session.expire_all()
    assert request.status == "sent" and request.payable_amount == Decimal("2400.00")
    assert request.attestation.startswith("J'atteste sur l'honneur")


@pytest.mark.parametrize("case, status, message", [
    ("no attestation", 400, "Cochez l'attestation sur l'honneur pour envoyer la demande de versement."),
    ("no expense", 400, "Déclarez au moins une dépense réalisée, avec sa facture acquittée."),
])
def test_sending_is_refused_without_attestation_or_expense(client, session, case, status, message):
    dossier = factories.dossier("granted")
    request = request_with(dossier, "solde", [] if case == "no expense" else ["1000.00"], send=False)
    agent_client(client, session, dossier)
    response = portal_post(client, dossier, f"/{request.id}/envoyer",
                           {"attest": "y"} if case == "no expense" else {})
    assert response.status_code == status and message in text(response)
    session.expire_all()
    assert request.status == "draft" and request.payable_amount is None
    assert events(dossier, "send_payment_request") == 0


@pytest.mark.parametrize("invoice, message", [
    (None, "Joignez la facture acquittée de cette dépense (PDF, JPEG ou PNG)."),
    ((b"not a pdf at all", "facture.pdf"), "seuls les fichiers PDF, JPEG et PNG sont acceptés"),
    ((b"", "facture.pdf"), "« facture.pdf » refusé : le fichier est vide."),
    (("png", "facture.pdf"), "ne correspond pas à son contenu (PNG)"),
])
def test_an_expense_without_a_valid_paid_invoice_is_refused_and_nothing_stored(client, session, invoice, message):
    dossier = factories.dossier("granted")
    request = request_with(dossier, "solde", [], send=False)
    agent_client(client, session, dossier)
    documents_before = session.scalar(select(func.count(Document.id)))
    data = {"category": "equipement", "label": "Serveur", "amount_ht": "6000"}
    if invoice is not None:
        content = factories.png_bytes() if invoice[0] == "png" else invoice[0]
        data["invoice"] = (io.BytesIO(content), invoice[1])
    response = portal_post(client, dossier, f"/{request.id}/depenses", data, content_type="multipart/form-data")
    assert response.status_code == 400 and message in text(response)
    session.expire_all()
    assert session.scalar(select(func.count(RealisedExpense.id))) == 0
    assert session.scalar(select(func.count(Document.id))) == documents_before


def test_starting_is_refused_when_one_is_open_before_a_grant_and_after_the_time_limit(client, session, monkeypatch):
    granted = factories.dossier("granted")
    received = factories.dossier("received", aid=3)
    request_with(granted, "acompte", ["1000.00"], send=False)
    agent_client(client, session, granted)
    response = portal_post(client, granted, "", {"kind": "solde"})
    assert response.status_code == 409
    assert "Une demande de versement (acompte) est déjà en cours sur ce dossier" in text(response)
    response = portal_post(client, received, "", {"kind": "solde"})
    assert response.status_code == 409 and "aucun versement ne peut y être demandé" in text(response)
    session.execute(PaymentRequest.__table__.delete())
    session.commit()
    # The last day is 28 November 2028 (24 months); 29 November 2028 00:30 in Paris is too late.
    monkeypatch.setattr("instruction.clock.now", lambda: datetime(2028, 11, 28, 23, 30, tzinfo=UTC))
    response = portal_post(client, granted, "", {"kind": "solde"})
    assert response.status_code == 409
    assert "Le délai pour demander le versement a expiré le 28 novembre 2028" in text(response)
    assert session.scalar(select(func.count(PaymentRequest.id))) == 0
    monkeypatch.setattr("instruction.clock.now", lambda: datetime(2028, 11, 28, 22, 30, tzinfo=UTC))
    assert portal_post(client, granted, "", {"kind": "solde"}).status_code == 302  # 23:30 on the last day


def test_a_third_instalment_is_refused(session):
    dossier = factories.dossier("granted")
    finance = factories.staff("finance")
    # Each request takes up the expenses before it: 1,000.00 then 2,000.00 (400.00 each time).
    for reference, realised in (("AC-1", "1000.00"), ("AC-2", "1000.00")):
        request = request_with(dossier, "acompte", [realised])
        services.pay(request, finance, amount=Decimal("400.00"), paid_on=PAID_ON, reference=reference, now=TODAY)
    with pytest.raises(dossier_services.ActionConflict, match=r"Le nombre maximal d'acomptes \(2\) est atteint"):
        services.start(dossier, agent_of(dossier), "acompte", now=TODAY)


# --- finance's refusals ------------------------------------------------------------------------------


def pay_url(dossier, request, what="verser"):
    return f"/instruction/dossiers/{dossier.id}/demandes-versement/{request.id}/{what}"


def pay_data(amount: str, reference: str = "MDT-9", **extra) -> dict:
    return {"amount": amount, "paid_on": PAID_ON.isoformat(), "reference": reference,
            "token": secrets.token_urlsafe(24), **extra}


@pytest.mark.parametrize("data, status, message", [
    (pay_data("2000,01"), 400, "Le montant (2 000,01 €) dépasse le montant à verser calculé pour cette demande, "
                               "2 000,00 €."),
    (pay_data("1000"), 400, "Vous versez moins que le montant à verser (2 000,00 €) : indiquez le motif"),
    (pay_data("2000", paid_on="2026-11-27"), 400, "ne peut pas précéder la décision d'attribution du 28 novembre 2026"),
    (pay_data("2000", reference=""), 400, "Indiquez la référence du versement"),
    (pay_data("2000", token=""), 400, "Le formulaire est incomplet : rechargez la page et recommencez."),
])
def test_bad_payments_of_a_request_are_refused_and_nothing_recorded(client, session, data, status, message):
    dossier = factories.dossier("granted")
    request = request_with(dossier, "acompte", ["5000.00"])  # 2,000.00 payable
    factories.staff_logged_in(client, session, "finance")
    page = text(client.get(f"/instruction/dossiers/{dossier.id}/demandes-versement/{request.id}"))
    assert "Montant à verser calculé" in page and "Télécharger facture-1.pdf" in page
    response = client.post(pay_url(dossier, request), data=data)
    assert response.status_code == status and message in text(response)
    session.expire_all()
    assert request.status == "sent" and dossier.paid_amount is None
    assert session.scalar(select(func.count(Payment.id)).where(Payment.dossier_id == dossier.id)) == 0


def test_an_instructor_cannot_pay_and_a_request_is_paid_once(client, session):
    dossier = factories.dossier("granted")
    request = request_with(dossier, "acompte", ["5000.00"])
    factories.staff_logged_in(client, session, "instructor")
    assert client.post(pay_url(dossier, request), data=pay_data("2000")).status_code == 403
    client.post("/deconnexion")
    factories.staff_logged_in(client, session, "finance")
    same = pay_data("2000")
    assert client.post(pay_url(dossier, request), data=same).status_code == 302
    assert client.post(pay_url(dossier, request), data=same).status_code == 302  # a double click: done once
    again = client.post(pay_url(dossier, request), data=pay_data("2000", reference="MDT-10"))
    assert again.status_code == 409 and "Cette demande de versement a déjà été traitée" in text(again)
    session.expire_all()
    assert [p.amount for p in dossier.payments] == [Decimal("2000.00")]


def test_finance_returns_a_request_the_beneficiary_corrects_and_sends_again(client, session):
    dossier = factories.dossier("granted")
    request = request_with(dossier, "solde", ["6000.00"])
    factories.staff_logged_in(client, session, "finance")
    empty = client.post(pay_url(dossier, request, "renvoyer"), data={"message": ""})
    assert empty.status_code == 400 and "Écrivez au demandeur ce qu'il doit corriger." in text(empty)
    assert client.post(pay_url(dossier, request, "renvoyer"),
                       data={"message": "La facture n'est pas acquittée."}).status_code == 302
    session.expire_all()
    assert request.status == "returned" and request.return_message == "La facture n'est pas acquittée."
    assert events(dossier, "return_payment_request") == 1 and outbox("return_payment_request", dossier) == 1
    client.post("/deconnexion")
    agent_client(client, session, dossier)
    page = text(client.get(f"/portail/dossiers/{dossier.id}"))
    assert "Votre demande de versement (solde) vous a été renvoyée par la Région." in page
    assert "La facture n'est pas acquittée." in page
    response = portal_post(client, dossier, f"/{request.id}/depenses", {
        "category": "equipement", "label": "Onduleur", "amount_ht": "1000",
        "invoice": (io.BytesIO(factories.pdf_bytes()), "facture-acquittee.pdf")}, content_type="multipart/form-data")
    assert response.status_code == 302
    assert portal_post(client, dossier, f"/{request.id}/envoyer", {"attest": "y"}).status_code == 302
    session.expire_all()
    # 40 % of 7,000.00 = 2,800.00
    assert request.status == "sent" and request.payable_amount == Decimal("2800.00")
    assert events(dossier, "send_payment_request") == 2


def test_the_finance_tab_lists_the_requests_waiting(client, session):
    waiting = factories.dossier("granted")
    other = factories.dossier("granted", aid=3)
    request_with(waiting, "acompte", ["1000.00"])
    request_with(other, "acompte", ["1000.00"], send=False)  # still a draft: not for finance yet
    factories.staff_logged_in(client, session, "finance")
    page = text(client.get("/instruction/?onglet=demandes-versement"))
    assert "Demandes de versement à traiter" in page
    assert waiting.reference in page and other.reference not in page


# --- caducité ------------------------------------------------------------------------------------------


def run_job(now: datetime) -> str:
    return jobs.run_job("balance_deadlines", now=now)


def test_reminders_before_the_time_limit_are_sent_once_each(session):
    dossier = factories.dossier("granted")
    session.commit()
    assert run_job(datetime(2028, 8, 30, 10, tzinfo=UTC)).startswith("0 rappel")  # J-91: too early
    # The grant lapses on 29 November 2028 at 00:00 in Paris; J-90 opens on 31 August 2028.
    assert run_job(datetime(2028, 9, 1, 10, tzinfo=UTC)).startswith("1 rappel")
    assert run_job(datetime(2028, 9, 1, 11, tzinfo=UTC)).startswith("0 rappel")
    assert run_job(datetime(2028, 11, 1, 10, tzinfo=UTC)).startswith("1 rappel")  # J-30
    keys = session.scalars(select(OutboxMessage.key).where(OutboxMessage.kind == "reminder_balance")
                           .order_by(OutboxMessage.id)).all()
    assert keys == [f"reminder:balance:J-90:dossier:{dossier.id}", f"reminder:balance:J-30:dossier:{dossier.id}"]
    assert dossier.state == "granted"


def test_a_grant_whose_balance_was_not_asked_lapses_once(session):
    dossier = factories.dossier("granted")
    session.commit()
    assert run_job(datetime(2028, 11, 28, 22, 30, tzinfo=UTC)).endswith("0 subvention(s) caduque(s)")  # last day
    summary = run_job(datetime(2028, 11, 28, 23, 30, tzinfo=UTC))  # 00:30 on 29 November in Paris
    assert summary.endswith("1 subvention(s) caduque(s)")
    assert run_job(datetime(2028, 11, 29, 23, 30, tzinfo=UTC)) == \
        "0 rappel(s) avant la date limite du solde, 0 subvention(s) caduque(s)"
    session.expire_all()
    assert dossier.state == "expired" and dossier.closed_at is not None
    assert consumed(session) == Decimal("0.00")  # the whole 4,000.00 back to the envelope
    assert events(dossier, "lapse") == 1 and outbox("lapse", dossier) == 1


def test_after_instalments_the_grant_lapses_at_what_was_paid(session):
    dossier = factories.dossier("granted")
    request = request_with(dossier, "acompte", ["2500.00"])  # 1,000.00
    services.pay(request, factories.staff("finance"), amount=Decimal("1000.00"), paid_on=PAID_ON,
                 reference="AC-1", now=TODAY)
    session.commit()
    run_job(datetime(2028, 12, 1, 10, tzinfo=UTC))
    session.expire_all()
    assert (dossier.state, dossier.paid_amount) == ("paid", Decimal("1000.00"))
    assert consumed(session) == Decimal("1000.00")  # 4,000.00 - 3,000.00 released
    assert events(dossier, "lapse_after_instalments") == 1


def test_a_balance_asked_in_time_does_not_lapse(session):
    dossier = factories.dossier("granted")
    request_with(dossier, "solde", ["1000.00"], now=datetime(2028, 11, 28, 10, tzinfo=UTC))
    session.commit()
    assert run_job(datetime(2028, 12, 15, 10, tzinfo=UTC)).endswith("0 subvention(s) caduque(s)")
    session.expire_all()
    assert dossier.state == "granted" and consumed(session) == Decimal("4000.00")
    with pytest.raises(dossier_services.ActionConflict, match="n'est pas caduque"):
        services.lapse(dossier, now=datetime(2028, 12, 15, 10, tzinfo=UTC))
