"""The e-mails of payment requests and of the balance time limit show their figures (read from the
outbox row's context): amounts and dates by hand, from the factories' grant of 4,000.00 € (aid 2,
40 %) on 28 November 2026; the balance is due by 28 November 2028."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from instruction.extensions import db
from instruction.notifications import jobs
from instruction.notifications.emails import build_email
from instruction.notifications.models import OutboxMessage
from instruction.payment_requests import services
from tests import factories
from tests.test_payment_requests import request_with

TODAY = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    monkeypatch.setattr("instruction.clock.now", lambda: TODAY)


def bodies(app, dossier, kind: str) -> tuple[str, str]:
    """The plain and HTML bodies of the dossier's e-mail of ``kind``, spaces collapsed."""
    message = db.session.scalar(select(OutboxMessage).where(OutboxMessage.dossier_id == dossier.id,
                                                            OutboxMessage.kind == kind))
    with app.test_request_context():
        email = build_email(message, message.deliveries[0])
    plain = email.get_body(("plain",)).get_content()
    html = re.sub(r"<[^>]+>", "", email.get_body(("html",)).get_content())
    return tuple(re.sub(r"\s+", " ", b.replace("\u00a0", " ").replace("\u202f", " ")) for b in (plain, html))


def test_sending_and_returning_a_request_say_which_request_and_its_figures(app, session):
    dossier = factories.dossier("granted")
    request = request_with(dossier, "solde", ["6000.00"])  # 40 % of 6,000.00 = 2,400.00
    for body in bodies(app, dossier, "send_payment_request"):
        assert (f"Une demande de versement (solde) a été envoyée sur le dossier {dossier.reference} « Projet » "
                f"({dossier.collectivite.name}) : 6 000,00 € HT de dépenses réalisées déclarées, 2 400,00 € "
                "à verser selon les règles de l'aide.") in body
    services.return_to_applicant(request, factories.staff("finance"), "Facture illisible.", now=TODAY)
    for body in bodies(app, dossier, "return_payment_request"):
        assert f"Votre demande de versement (solde) du dossier {dossier.reference} « Projet » vous est renvoyée" in body


def test_the_balance_reminder_and_the_lapse_show_the_amounts_and_the_last_day(app, session):
    dossier = factories.dossier("granted")
    session.commit()
    jobs.run_job("balance_deadlines", now=datetime(2028, 9, 1, 10, tzinfo=UTC))  # J-90
    for body in bodies(app, dossier, "reminder_balance"):
        assert "(4 000,00 € attribués, 0,00 € déjà versés) attend la demande de son solde." in body
        assert "au plus tard le 28 novembre 2028 (dans 90 jours au plus)" in body
    jobs.run_job("balance_deadlines", now=datetime(2028, 11, 28, 23, 30, tzinfo=UTC))
    for body in bodies(app, dossier, "lapse"):
        assert "(4 000,00 € attribués) n'a pas été demandé au plus tard le 28 novembre 2028," in body


def test_the_lapse_after_instalments_shows_what_was_paid_and_released(app, session):
    dossier = factories.dossier("granted")
    request = request_with(dossier, "acompte", ["2500.00"])  # 1,000.00
    services.pay(request, factories.staff("finance"), amount=Decimal("1000.00"), paid_on=date(2026, 12, 1),
                 reference="AC-1", now=TODAY)
    session.commit()
    jobs.run_job("balance_deadlines", now=datetime(2028, 12, 1, 10, tzinfo=UTC))
    for body in bodies(app, dossier, "lapse_after_instalments"):
        assert "(4 000,00 € attribués) n'a pas été demandé au plus tard le 28 novembre 2028," in body
        assert ("le dossier est clos aux 1 000,00 € d'acomptes déjà versés, et les 3 000,00 € restants sont "
                "rendus à l'enveloppe de l'aide.") in body
