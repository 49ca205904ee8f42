"""Two finance clerks pay the same payment request at the same instant, over HTTP, against gunicorn
with 3 worker processes (PostgreSQL and SQLite, the harness of ``test_payment_races``): one
payment is recorded, the other clerk is told the request was already dealt with, and the money
holds (paid = sum of the payments <= grant; every envelope's consumed = what its dossiers hold)."""

from __future__ import annotations

import secrets
from decimal import Decimal

from sqlalchemy import func, select

from instruction.dossiers.models import Dossier, Payment
from instruction.extensions import db
from instruction.payment_requests import services
from instruction.payment_requests.models import PaymentRequest
from tests import factories
from tests.test_payment_races import GRANT, PAID_ON, Browser, assert_money_holds, server, together

__all__ = ["server"]  # the module-scoped fixture, shared with the payment races


def sent_balance(now) -> tuple[int, int]:
    """A granted dossier (1,000.00 €) with a balance request sent: 2,500.00 € HT realised, 40 % =
    1,000.00 € payable, nothing to release."""
    dossier = factories.dossier("granted", grant_amount=GRANT)
    agent = factories.applicant_of(dossier.collectivite)
    request = services.start(dossier, agent, "solde", now=now)
    services.add_expense(request, agent, category="equipement", label="Serveur", amount_ht=Decimal("2500.00"),
                         pack=None, months=None, invoice=("facture.pdf", factories.pdf_bytes()),
                         max_bytes=10**7, now=now)
    services.send(request, agent, attested=True, now=now)
    ids = dossier.id, request.id
    db.session.commit()
    db.session.close()  # SQLite: no transaction (no write lock) left open while gunicorn serves
    return ids


def test_two_clerks_paying_one_request_record_one_payment(server):
    app, port, users = server
    dossier_id, request_id = sent_balance(factories.NOW)
    clerks = [Browser(port).log_in(users["finance"]), Browser(port).log_in(users["admin"])]
    path = f"/instruction/dossiers/{dossier_id}/demandes-versement/{request_id}/verser"
    answers = together([(clerk, path, {"amount": "1000,00", "paid_on": PAID_ON, "reference": f"SOLDE-{i}",
                                       "token": secrets.token_urlsafe(24)})
                        for i, clerk in enumerate(clerks)])
    statuses = sorted(status for status, _ in answers)
    assert statuses == [302, 409], [page[:3000] for _, page in answers]
    refused = next(page for status, page in answers if status == 409)
    assert "Cette demande de versement a déjà été traitée" in refused
    db.session.expire_all()
    assert db.session.scalar(select(func.count(Payment.id)).where(Payment.dossier_id == dossier_id)) == 1
    dossier = db.session.get(Dossier, dossier_id)
    assert (dossier.state, dossier.paid_amount) == ("paid", Decimal("1000.00"))
    assert db.session.get(PaymentRequest, request_id).status == "paid"
    assert_money_holds()
