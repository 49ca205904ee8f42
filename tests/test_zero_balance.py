"""A balance that justifies nothing more is settled at 0,00 € (« Solder à 0,00 € »): no payment, the
dossier paid at what was already paid, the rest of the grant back to the envelope once confirmed.

Amounts by hand: the factories grant aid 2 (40 % of eligible expenses) 4,000.00 € on 28 November
2026, against the envelope epci:200000925 (consumed 4,000.00 € after the grant). An instalment on
2,500.00 € of realised expenses pays 40 % = 1,000.00 €; the balance takes those expenses up and
adds none: 1,000.00 € justified, 1,000.00 € already paid, 0,00 € payable, 3,000.00 € released."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from instruction.dossiers import services as dossier_services
from instruction.dossiers.models import AuditEvent, Envelope, Payment
from instruction.extensions import db
from instruction.notifications.emails import build_email
from instruction.notifications.models import OutboxMessage
from instruction.payment_requests import services
from instruction.payment_requests.models import PaymentRequest
from tests import factories
from tests.test_payment_requests import agent_of, request_with, text

TODAY = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
PAID_ON = date(2026, 12, 1)


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    monkeypatch.setattr("instruction.clock.now", lambda: TODAY)


def consumed(session) -> Decimal:
    session.expire_all()
    return session.scalar(select(Envelope.consumed).where(Envelope.scope == "epci:200000925",
                                                          Envelope.aid_number == 2))


def plain(value: str) -> str:
    return re.sub(r"\s+", " ", value.replace("\u00a0", " ").replace("\u202f", " "))


def events(dossier, action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.dossier_id == dossier.id,
                                                            AuditEvent.action == action)))


def payments(dossier) -> int:
    return db.session.scalar(select(func.count(Payment.id)).where(Payment.dossier_id == dossier.id))


def balance_after_instalment(session):
    """Granted 4,000.00; an instalment of 1,000.00 paid; a sent balance with 0,00 € payable."""
    dossier = factories.dossier("granted")
    finance = factories.staff("finance")
    instalment = request_with(dossier, "acompte", ["2500.00"])
    services.pay(instalment, finance, amount=Decimal("1000.00"), paid_on=PAID_ON, reference="AC-1", now=TODAY)
    balance = request_with(dossier, "solde", [])  # the instalment's 2,500.00 taken up, nothing added
    assert [e.amount_ht for e in balance.expenses] == [Decimal("2500.00")]
    assert balance.status == "sent" and balance.payable_amount == Decimal("0.00")
    return dossier, balance, finance


def email_of(app, dossier, kind: str) -> tuple[OutboxMessage, str]:
    message = db.session.scalar(select(OutboxMessage).where(OutboxMessage.dossier_id == dossier.id,
                                                            OutboxMessage.kind == kind))
    with app.test_request_context():
        email = build_email(message, message.deliveries[0])
    assert email["Subject"] == f"Dossier {dossier.reference} : solde arrêté à 0,00 €, dossier soldé"
    return message, plain(email.get_body(("plain",)).get_content())


def test_a_balance_covered_by_the_instalment_is_settled_at_zero(app, session):
    dossier, balance, finance = balance_after_instalment(session)
    assert consumed(session) == Decimal("4000.00")
    with pytest.raises(dossier_services.ConfirmationRequired) as asked, session.begin_nested():
        services.settle_at_zero(balance, finance, now=TODAY)
    assert asked.value.release == Decimal("3000.00")  # 4,000.00 - 1,000.00
    assert "Confirmez le solde à 0,00 €" in plain(asked.value.message)
    session.expire_all()
    assert (dossier.state, balance.status, consumed(session)) == ("granted", "sent", Decimal("4000.00"))

    services.settle_at_zero(balance, finance, now=TODAY, confirmed_release=Decimal("3000.00"))
    session.expire_all()
    assert (dossier.state, dossier.paid_amount, dossier.closed_at) == ("paid", Decimal("1000.00"), TODAY)
    assert consumed(session) == Decimal("1000.00")  # down by 3,000.00 exactly
    assert payments(dossier) == 1  # the instalment only: no payment row for the 0,00 €
    assert (balance.status, balance.payment_id, balance.settled_at, balance.paid_by_id) == \
        ("paid", None, TODAY, finance.id)
    assert balance.settled_at_zero and balance.status_label == "Soldée à 0,00 €"
    assert any(f["code"] == "payable.zero" for f in balance.findings)
    [event] = events(dossier, "record_final_payment")
    assert (event.from_state, event.to_state) == ("granted", "paid")
    assert plain(event.reason) == ("Solde arrêté à 0,00 €, sans versement : 1 000,00 € versés au total, "
                                   "3 000,00 € rendus à l'enveloppe ; solde demandé le 1er décembre 2026, "
                                   "rien de plus n'est justifié")
    message, body = email_of(app, dossier, "record_final_payment")
    assert message.context["zero_balance"] is True
    assert plain(message.context["paid"]) == "1 000,00 €" and plain(message.context["released"]) == "3 000,00 €"
    assert (f"Le solde de votre dossier {dossier.reference} « Projet » est arrêté à 0,00 € : les dépenses "
            "réalisées déclarées ne justifient aucun montant au-delà des 1 000,00 € déjà versés. Aucun "
            "nouveau versement n'est effectué.") in body
    assert ("Le dossier est soldé à 1 000,00 € versés au total pour 4 000,00 € attribués ; les 3 000,00 € "
            "restants sont rendus à l'enveloppe de l'aide.") in body


def test_a_balance_justifying_nothing_without_any_payment_closes_at_zero(app, session):
    dossier = factories.dossier("granted")
    # 40 % of 0.01 = 0.004, rounded down: 0.00 justified, nothing paid, the whole 4,000.00 released.
    balance = request_with(dossier, "solde", ["0.01"])
    assert balance.status == "sent" and balance.payable_amount == Decimal("0.00")
    finance = factories.staff("finance")
    services.settle_at_zero(balance, finance, now=TODAY, confirmed_release=Decimal("4000.00"))
    session.expire_all()
    assert (dossier.state, dossier.paid_amount) == ("paid", Decimal("0.00"))
    assert consumed(session) == Decimal("0.00") and payments(dossier) == 0
    assert len(events(dossier, "record_final_payment")) == 1
    _, body = email_of(app, dossier, "record_final_payment")
    assert "ne justifient aucun montant à verser. Aucun nouveau versement n'est effectué." in body
    assert ("Le dossier est soldé sans versement pour 4 000,00 € attribués ; les 4 000,00 € restants sont "
            "rendus à l'enveloppe de l'aide.") in body
    assert "0,00 € déjà versés" not in body


def test_a_double_submit_settles_and_releases_once(session):
    dossier, balance, finance = balance_after_instalment(session)
    token = secrets.token_urlsafe(24)
    services.settle_at_zero(balance, finance, now=TODAY, token=token, confirmed_release=Decimal("3000.00"))
    with pytest.raises(dossier_services.AlreadyDone):
        services.settle_at_zero(balance, finance, now=TODAY, token=token, confirmed_release=Decimal("3000.00"))
    assert consumed(session) == Decimal("1000.00")
    assert len(events(dossier, "record_final_payment")) == 1


def test_a_zero_payment_stays_refused_where_it_makes_no_sense(session):
    finance = factories.staff("finance")
    instalment_dossier = factories.dossier("granted")
    instalment = request_with(instalment_dossier, "acompte", ["5000.00"])  # 2,000.00 payable
    with pytest.raises(dossier_services.InvalidAction, match="Seul un solde peut être soldé à 0,00 €"):
        services.settle_at_zero(instalment, finance, now=TODAY, confirmed_release=Decimal("4000.00"))
    balance_dossier = factories.dossier("granted")
    balance = request_with(balance_dossier, "solde", ["6000.00"])  # 2,400.00 payable
    with pytest.raises(dossier_services.InvalidAction, match=r"Ce solde justifie 2.400,00.€ à verser"):
        services.settle_at_zero(balance, finance, now=TODAY, confirmed_release=Decimal("1600.00"))
    with pytest.raises(dossier_services.InvalidAction, match="Le montant du versement doit être positif"):
        services.pay(balance, finance, amount=Decimal("0.00"), paid_on=PAID_ON, reference="Z-1",
                     reason="Rien", now=TODAY, confirmed_release=Decimal("4000.00"))
    # Outside a payment request, the dossier's payment form never takes 0.
    with pytest.raises(dossier_services.InvalidAction, match="Le montant du versement doit être positif"):
        dossier_services.record_payment(balance_dossier, finance, amount=Decimal("0.00"), paid_on=PAID_ON,
                                        reference="Z-2", final=True, now=TODAY,
                                        confirmed_release=Decimal("4000.00"))
    session.expire_all()
    assert (instalment.status, balance.status) == ("sent", "sent")
    assert (instalment_dossier.state, balance_dossier.state) == ("granted", "granted")
    assert consumed(session) == Decimal("8000.00")  # both grants still committed


def test_paying_a_zero_balance_points_to_the_settlement(session):
    dossier, balance, finance = balance_after_instalment(session)
    with pytest.raises(dossier_services.InvalidAction, match="soldez-le à 0,00 €"):
        services.pay(balance, finance, amount=Decimal("0.00"), paid_on=PAID_ON, reference="Z-1", now=TODAY)
    assert balance.status == "sent"


def test_the_way_back_is_cancelling_the_instalment(session):
    dossier, balance, finance = balance_after_instalment(session)
    services.settle_at_zero(balance, finance, now=TODAY, confirmed_release=Decimal("3000.00"))
    [instalment] = dossier.payments
    dossier_services.cancel_payment(dossier, instalment.id, factories.staff("admin"), "Solde clos par erreur",
                                    now=TODAY)
    session.expire_all()
    assert (dossier.state, dossier.paid_amount) == ("granted", None)
    assert consumed(session) == Decimal("4000.00")  # the 3,000.00 released taken back
    # The settled request stays in the history; the beneficiary may ask for the balance again.
    assert balance.status == "paid" and services.open_request(dossier) is None


# --- the finance page ---------------------------------------------------------------------------


def page_url(dossier, request, what: str = "") -> str:
    return f"/instruction/dossiers/{dossier.id}/demandes-versement/{request.id}" + (f"/{what}" if what else "")


def test_finance_settles_at_zero_from_the_request_page_after_confirming(client, session):
    dossier, balance, _ = balance_after_instalment(session)
    factories.staff_logged_in(client, session, "finance")
    page = text(client.get(page_url(dossier, balance)))
    assert "Solder à 0,00 €" in page and "Verser le montant" not in page and "Référence (mandat" not in page
    assert "3 000,00 € sont rendus à l'enveloppe" in page
    token = secrets.token_urlsafe(24)
    asked = client.post(page_url(dossier, balance, "solder"), data={"token": token})
    assert asked.status_code == 200
    assert "Confirmez le solde à 0,00 €" in text(asked) and "Confirmer le solde à 0,00 €" in text(asked)
    assert 'name="confirmed_release" type="hidden" value="3000,00"' in asked.get_data(as_text=True)
    session.expire_all()
    assert balance.status == "sent" and consumed(session) == Decimal("4000.00")
    data = {"token": token, "confirmed_release": "3000,00"}
    done = client.post(page_url(dossier, balance, "solder"), data=data)
    assert done.status_code == 302
    assert client.post(page_url(dossier, balance, "solder"), data=data).status_code == 302  # a double click
    session.expire_all()
    assert (dossier.state, dossier.paid_amount) == ("paid", Decimal("1000.00"))
    assert consumed(session) == Decimal("1000.00") and len(events(dossier, "record_final_payment")) == 1
    page = text(client.get(page_url(dossier, balance)))
    assert "Soldée à 0,00 € le 1er décembre 2026 à 11:00, sans versement" in page
    assert "Solder à 0,00 €" not in page


@pytest.mark.parametrize("kind, amounts, message", [
    ("acompte", ["5000.00"], "Seul un solde peut être soldé à 0,00 €"),
    ("solde", ["6000.00"], "Ce solde justifie 2 400,00 € à verser : il ne peut pas être soldé à 0,00 €."),
])
def test_settling_at_zero_is_refused_with_something_to_pay(client, session, kind, amounts, message):
    dossier = factories.dossier("granted")
    request = request_with(dossier, kind, amounts)
    factories.staff_logged_in(client, session, "finance")
    page = text(client.get(page_url(dossier, request)))
    assert "Verser le montant" in page and "Solder à 0,00 €" not in page
    response = client.post(page_url(dossier, request, "solder"),
                           data={"token": secrets.token_urlsafe(24), "confirmed_release": "4000.00"})
    assert response.status_code == 400 and message in text(response)
    session.expire_all()
    assert request.status == "sent" and dossier.state == "granted" and consumed(session) == Decimal("4000.00")


def test_an_instructor_cannot_settle_at_zero(client, session):
    dossier, balance, _ = balance_after_instalment(session)
    factories.staff_logged_in(client, session, "instructor")
    response = client.post(page_url(dossier, balance, "solder"),
                           data={"token": secrets.token_urlsafe(24), "confirmed_release": "3000.00"})
    assert response.status_code == 403
    session.expire_all()
    assert balance.status == "sent" and session.get(PaymentRequest, balance.id).settled_at is None


def test_the_beneficiary_sees_the_balance_settled_at_zero(client, session):
    dossier, balance, finance = balance_after_instalment(session)
    services.settle_at_zero(balance, finance, now=TODAY, confirmed_release=Decimal("3000.00"))
    agent = agent_of(dossier)
    session.commit()
    factories.log_in(client, agent)
    page = text(client.get(f"/portail/dossiers/{dossier.id}/versement"))
    assert "Solde envoyé le 1er décembre 2026 : soldé à 0,00 € le 1er décembre 2026, sans versement" in page
