"""Payment rules: every bad payment refused in French with nothing recorded, the one-time token of
money forms, the confirmation of a final payment below the grant, cancelling a payment, and the
database refusing money that does not add up whatever the code does."""

from __future__ import annotations

import html as html_lib
import secrets
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from instruction.dossiers import services
from instruction.dossiers.models import AuditEvent, Dossier, Envelope, Payment
from instruction.extensions import db
from instruction.notifications.models import OutboxMessage
from tests import factories
from tests.factories import NOW

GRANT_DAY = "2026-11-28"  # the factories grant on NOW, 28 November 2026


def text(response) -> str:
    return html_lib.unescape(response.get_data(as_text=True)).replace("\u00a0", " ")


def pay(client, dossier, data, action="record_payment"):
    data = {"token": secrets.token_urlsafe(24), **data}
    return client.post(f"/instruction/dossiers/{dossier.id}/actions/{action}", data=data)


def envelope_consumed(session) -> Decimal:
    session.expire_all()
    return session.scalar(select(Envelope.consumed).where(Envelope.scope == "epci:200000925"))


def tomorrow_in_paris() -> str:
    return (datetime.now(ZoneInfo("Europe/Paris")).date() + timedelta(days=1)).isoformat()


# --- every bad payment input, refused in French, nothing recorded ------------------------------


@pytest.mark.parametrize("data, message", [
    ({"amount": "100", "paid_on": "1999-01-01", "reference": "M"},
     "La date du versement (1er janvier 1999) ne peut pas précéder la décision d'attribution du 28 novembre 2026."),
    ({"amount": "100", "paid_on": "2026-11-27", "reference": "M"},
     "La date du versement (27 novembre 2026) ne peut pas précéder la décision d'attribution du 28 novembre 2026."),
    ({"amount": "100", "paid_on": "tomorrow", "reference": "M"},
     "La date du versement ne peut pas être dans le futur"),
    ({"amount": "4000,01", "paid_on": GRANT_DAY, "reference": "M"},
     "Le versement dépasse le montant attribué : 4 000,00 € attribués, 0,00 € déjà versés, reste 4 000,00 €."),
    ({"amount": "0", "paid_on": GRANT_DAY, "reference": "M"}, "Le montant doit être supérieur à zéro."),
    ({"amount": "-5", "paid_on": GRANT_DAY, "reference": "M"}, "Le montant ne peut pas être négatif."),
    ({"amount": "12.345", "paid_on": GRANT_DAY, "reference": "M"},
     "Le montant a au plus deux chiffres après la virgule (les centimes)."),
    ({"amount": "", "paid_on": GRANT_DAY, "reference": "M"}, "Indiquez le montant du versement."),
    ({"amount": "100", "paid_on": "", "reference": "M"}, "Indiquez la date du versement."),
    ({"amount": "100", "paid_on": GRANT_DAY, "reference": "x" * 101},
     "La référence ne peut pas dépasser 100 caractères."),
    ({"amount": "100", "paid_on": GRANT_DAY, "reference": "M", "token": ""},
     "Le formulaire est incomplet : rechargez la page et recommencez."),
])
def test_bad_payment_input_is_refused_in_french_and_nothing_recorded(client, session, data, message):
    dossier = factories.dossier("granted")  # 4,000 € granted on 28 November 2026
    factories.staff_logged_in(client, session, "finance")
    if data["paid_on"] == "tomorrow":
        data = {**data, "paid_on": tomorrow_in_paris()}
    response = pay(client, dossier, data)
    assert response.status_code == 400
    assert message in text(response)
    session.expire_all()
    assert session.scalar(select(func.count(Payment.id)).where(Payment.dossier_id == dossier.id)) == 0
    assert dossier.paid_amount is None and dossier.state == "granted"


def test_a_mandate_reference_is_unique_per_budget_year_naming_its_dossier(client, session):
    first = factories.dossier("granted")
    second = factories.dossier("granted", aid=3)
    factories.staff_logged_in(client, session, "finance")
    assert pay(client, first, {"amount": "100", "paid_on": GRANT_DAY, "reference": "MDT-2026-17"}).status_code == 302
    for typed in ("MDT-2026-17", "  mdt-2026-17 "):
        response = pay(client, second, {"amount": "100", "paid_on": GRANT_DAY, "reference": typed})
        assert response.status_code == 400
        assert (f"La référence « {typed.strip()} » est déjà celle d'un versement de l'exercice 2026, sur le "
                f"dossier {first.reference}.") in text(response)
    session.expire_all()
    assert second.paid_amount is None and len(second.payments) == 0


def test_the_same_reference_in_another_budget_year_is_accepted(session):
    dossier = factories.dossier("granted")
    finance = factories.staff("finance")
    services.record_payment(dossier, finance, amount=Decimal("100.00"), paid_on=date(2026, 12, 30),
                            reference="MDT-17", final=False, now=datetime(2026, 12, 30, 10, tzinfo=UTC))
    services.record_payment(dossier, finance, amount=Decimal("100.00"), paid_on=date(2027, 1, 4),
                            reference="MDT-17", final=False, now=datetime(2027, 1, 4, 10, tzinfo=UTC))
    assert [p.budget_year for p in dossier.payments] == [2026, 2027]
    assert dossier.paid_amount == Decimal("200.00")


def test_the_payment_date_is_read_in_paris(session):
    """23:30 UTC on 31 December is already 1 January in Paris: a payment of 1 January is not future."""
    dossier = factories.dossier("granted")
    services.record_payment(dossier, factories.staff("finance"), amount=Decimal("10.00"),
                            paid_on=date(2027, 1, 1), reference="NY", final=False,
                            now=datetime(2026, 12, 31, 23, 30, tzinfo=UTC))
    with pytest.raises(services.InvalidAction, match="dans le futur"):
        services.record_payment(dossier, factories.staff("finance"), amount=Decimal("10.00"),
                                paid_on=date(2027, 1, 2), reference="NY2", final=False,
                                now=datetime(2026, 12, 31, 23, 30, tzinfo=UTC))


# --- one-time tokens -----------------------------------------------------------------------------


def test_a_replayed_payment_form_records_one_payment(client, session):
    dossier = factories.dossier("granted")
    factories.staff_logged_in(client, session, "finance")
    data = {"amount": "100", "paid_on": GRANT_DAY, "reference": "ONCE", "token": "t" * 32}
    assert pay(client, dossier, data).status_code == 302
    again = pay(client, dossier, data)
    assert again.status_code == 302
    assert "Ce formulaire avait déjà été envoyé : l'opération n'a été enregistrée qu'une fois." in \
        text(client.get(again.headers["Location"]))
    session.expire_all()
    assert dossier.paid_amount == Decimal("100.00") and len(dossier.payments) == 1


def test_a_replayed_grant_form_grants_once(client, session):
    dossier = factories.dossier("eligible")
    factories.staff_logged_in(client, session, "instructor")
    data = {"amount": "4000", "token": "g" * 32}
    assert pay(client, dossier, data, "grant").status_code == 302
    assert pay(client, dossier, data, "grant").status_code == 302  # not a 409: it was done
    assert envelope_consumed(session) == Decimal("4000.00")


def test_a_refused_payment_does_not_spend_its_token(client, session):
    dossier = factories.dossier("granted")
    factories.staff_logged_in(client, session, "finance")
    data = {"amount": "5000", "paid_on": GRANT_DAY, "reference": "T", "token": "r" * 32}
    assert pay(client, dossier, data).status_code == 400
    assert pay(client, dossier, {**data, "amount": "50"}).status_code == 302  # corrected, same form
    session.expire_all()
    assert dossier.paid_amount == Decimal("50.00")


# --- a final payment below the grant is confirmed -----------------------------------------------


def test_a_final_payment_below_the_grant_shows_what_it_releases_then_is_confirmed(client, session):
    dossier = factories.dossier("granted")
    factories.staff_logged_in(client, session, "finance")
    data = {"amount": "3 000", "paid_on": GRANT_DAY, "reference": "SOLDE", "final": "y"}
    response = pay(client, dossier, data)
    assert response.status_code == 200
    body = text(response)
    assert "1 000,00 € seront rendus à l'enveloppe" in body and "Confirmer le versement final" in body
    session.expire_all()
    assert dossier.state == "granted" and not dossier.payments
    assert envelope_consumed(session) == Decimal("4000.00")
    # A confirmation of another release (the amount was changed meanwhile) asks again.
    assert pay(client, dossier, {**data, "confirmed_release": "900,00"}).status_code == 200
    assert pay(client, dossier, {**data, "confirmed_release": "1000,00"}).status_code == 302
    session.expire_all()
    assert dossier.state == "paid" and dossier.paid_amount == Decimal("3000.00")
    assert envelope_consumed(session) == Decimal("3000.00")


# --- cancelling a payment recorded by mistake ----------------------------------------------------


def cancel(client, dossier, payment, reason="Saisi sur le mauvais dossier"):
    return client.post(f"/instruction/dossiers/{dossier.id}/versements/{payment.id}/annulation",
                       data={"reason": reason, "token": secrets.token_urlsafe(24)})


def test_cancelling_a_partial_payment_restores_the_paid_total(client, session):
    dossier = factories.dossier("granted")
    finance = factories.staff("finance")
    services.record_payment(dossier, finance, amount=Decimal("1500.00"), paid_on=date(2026, 11, 28),
                            reference="ERR-1", final=False, now=NOW)
    session.commit()
    factories.staff_logged_in(client, session, "finance")
    response = cancel(client, dossier, dossier.payments[0])
    assert response.status_code == 302
    session.expire_all()
    payment = dossier.payments[0]
    assert dossier.state == "granted" and dossier.paid_amount is None
    assert payment.cancelled_at is not None and payment.cancel_reason == "Saisi sur le mauvais dossier"
    assert envelope_consumed(session) == Decimal("4000.00")  # a granted dossier holds its grant
    event = session.scalar(select(AuditEvent).where(AuditEvent.dossier_id == dossier.id,
                                                    AuditEvent.action == "cancel_payment"))
    assert event.reason.replace("\u202f", " ").replace("\u00a0", " ") == ("Versement de 1 500,00 € (ERR-1) du 28 novembre 2026 annulé : "
                            "Saisi sur le mauvais dossier")
    outbox = session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "cancel_payment",
                                                        OutboxMessage.dossier_id == dossier.id))
    assert outbox is not None and "ERR-1" in outbox.context["reason"]
    # Its reference is free again, and the grant can be paid in full.
    services.record_payment(dossier, finance, amount=Decimal("4000.00"), paid_on=date(2026, 11, 28),
                            reference="ERR-1", final=False, now=NOW)
    assert dossier.state == "paid"


def test_cancelling_the_balance_reopens_the_dossier_and_takes_back_the_release(session):
    dossier = factories.dossier("granted")
    finance = factories.staff("finance")
    services.record_payment(dossier, finance, amount=Decimal("3000.00"), paid_on=date(2026, 11, 28),
                            reference="S-1", final=True, now=NOW, confirmed_release=Decimal("1000.00"))
    assert envelope_consumed(session) == Decimal("3000.00")
    services.cancel_payment(dossier, dossier.payments[0].id, finance, "Montant erroné", now=NOW)
    assert dossier.state == "granted" and dossier.paid_amount is None and dossier.closed_at is None
    assert envelope_consumed(session) == Decimal("4000.00")
    with pytest.raises(services.ActionConflict, match="Aucun versement à annuler sur ce dossier"):
        services.cancel_payment(dossier, dossier.payments[0].id, finance, "Encore", now=NOW)


def test_a_balance_cannot_be_cancelled_once_its_release_is_granted_elsewhere(session):
    dossier = factories.dossier("granted", grant_amount=Decimal("30000.00"), lines=[
        {"category": "equipement", "label": "Serveurs", "amount_ht": "80000.00"}])
    finance = factories.staff("finance")
    services.record_payment(dossier, finance, amount=Decimal("10000.00"), paid_on=date(2026, 11, 28),
                            reference="S-2", final=True, now=NOW, confirmed_release=Decimal("20000.00"))
    factories.dossier("granted", grant_amount=Decimal("20000.00"), lines=[
        {"category": "equipement", "label": "Réseau", "amount_ht": "60000.00"}])  # takes the release
    with pytest.raises(services.ActionConflict, match="L.enveloppe ne peut plus reprendre les 20.000,00.€"):
        services.cancel_payment(dossier, dossier.payments[0].id, finance, "Erreur", now=NOW)
    assert dossier.state == "paid"


@pytest.mark.parametrize("role, status", [("instructor", 403), ("admin", 302), ("finance", 302)])
def test_who_may_cancel_a_payment(client, session, role, status):
    dossier = factories.dossier("granted")
    services.record_payment(dossier, factories.staff("finance"), amount=Decimal("10.00"),
                            paid_on=date(2026, 11, 28), reference="W", final=False, now=NOW)
    session.commit()
    factories.staff_logged_in(client, session, role)
    assert cancel(client, dossier, dossier.payments[0]).status_code == status


def test_a_cancellation_without_reason_is_a_400(client, session):
    dossier = factories.dossier("granted")
    services.record_payment(dossier, factories.staff("finance"), amount=Decimal("10.00"),
                            paid_on=date(2026, 11, 28), reference="W", final=False, now=NOW)
    session.commit()
    factories.staff_logged_in(client, session, "finance")
    response = cancel(client, dossier, dossier.payments[0], reason=" ")
    assert response.status_code == 400 and "Indiquez un motif" in text(response)
    session.expire_all()
    assert dossier.payments[0].cancelled_at is None and dossier.paid_amount == Decimal("10.00")


def test_cancel_grant_is_possible_once_every_payment_is_cancelled(session):
    dossier = factories.dossier("granted")
    finance, admin = factories.staff("finance"), factories.staff("admin")
    services.record_payment(dossier, finance, amount=Decimal("10.00"), paid_on=date(2026, 11, 28),
                            reference="W", final=False, now=NOW)
    with pytest.raises(services.ActionConflict, match="Des versements ont déjà été enregistrés"):
        services.cancel_grant(dossier, admin, "Erreur", now=NOW)
    services.cancel_payment(dossier, dossier.payments[0].id, finance, "Erreur", now=NOW)
    services.cancel_grant(dossier, admin, "Erreur", now=NOW)
    assert dossier.state == "eligible" and envelope_consumed(session) == Decimal("0.00")


# --- the database refuses money that does not add up --------------------------------------------


def violates(statement) -> bool:
    try:
        with db.session.begin_nested():
            db.session.execute(statement)
    except IntegrityError:
        return True
    return False


def raw_payment(dossier, amount: str, **extra):
    return insert(Payment).values(dossier_id=dossier.id, amount=Decimal(amount), paid_on=date(2026, 11, 28),
                                  reference=secrets.token_hex(4), budget_year=2026, is_final=False,
                                  recorded_at=NOW, **extra)


@pytest.mark.parametrize("state", ["received", "eligible", "refused"])
def test_no_payment_on_a_dossier_that_is_not_granted(session, state):
    assert violates(raw_payment(factories.dossier(state), "10.00"))


def test_payments_never_exceed_the_grant(session):
    dossier = factories.dossier("granted")  # 4,000 €
    assert not violates(raw_payment(dossier, "3000.00"))
    assert violates(raw_payment(dossier, "1000.01"))
    assert not violates(raw_payment(dossier, "1000.00", cancelled_at=NOW, cancel_reason="x").values())


@pytest.mark.parametrize("values", [
    {"granted_amount": None, "state": "eligible", "paid_amount": None},  # the grant cancelled under a payment
    {"granted_amount": Decimal("50.00")},  # below what was paid
    {"paid_amount": Decimal("200.00")},  # not the sum of the payments
    {"paid_amount": None},
])
def test_a_dossier_holding_a_payment_keeps_amounts_that_add_up(session, values):
    dossier = factories.dossier("granted")
    services.record_payment(dossier, factories.staff("finance"), amount=Decimal("100.00"),
                            paid_on=date(2026, 11, 28), reference="H", final=False, now=NOW)
    assert violates(update(Dossier).where(Dossier.id == dossier.id).values(**values))


@pytest.mark.parametrize("values", [
    {"state": "eligible", "granted_amount": None, "paid_amount": Decimal("0.00")},  # NULL grant, paid set
    {"paid_amount": Decimal("4000.01")},
])
def test_a_paid_amount_needs_a_grant_above_it(session, values):
    dossier = factories.dossier("granted")
    assert violates(update(Dossier).where(Dossier.id == dossier.id).values(**values))


def test_a_cancelled_payment_needs_a_reason(session):
    dossier = factories.dossier("granted")
    assert violates(raw_payment(dossier, "10.00", cancelled_at=NOW))
