"""Derived data stays true: going back clears what eligibility froze; the envelope's figures follow."""

from __future__ import annotations

from decimal import Decimal

from instruction.backoffice import envelope_figures
from instruction.dossiers import services
from tests import factories
from tests.factories import NOW


def test_documents_requested_on_an_eligible_dossier_then_resubmitted(client, session):
    dossier = factories.dossier("eligible", aid=2)  # 40 % of 10,000 € → 4,000 € frozen
    assert dossier.computed_amount == Decimal("4000.00") and dossier.evaluation is not None
    services.request_documents(dossier, factories.staff(), "Le devis n'est pas signé.", now=NOW)
    assert (dossier.evaluation, dossier.computed_amount) == (None, None)
    dossier.lines[0].amount_ht = Decimal("5000.00")  # the signed quote is lower
    services.resubmit(dossier, factories.applicant_of(dossier.collectivite), "Devis signé", now=NOW)
    assert dossier.requested_amount == Decimal("2000.00")
    other = factories.dossier("received", aid=2)
    session.commit()
    # The other dossier's page counts this one's demand as 2,000 €, not the old 4,000 €.
    figures = envelope_figures.for_dossier(other, NOW)
    assert (figures.pending, figures.pending_count) == (Decimal("2000.00"), 1)
    assert envelope_figures.demand_of(dossier) == Decimal("2000.00")
    factories.staff_logged_in(client, session)
    body = client.get(f"/instruction/dossiers/{dossier.id}").get_data(as_text=True)
    assert "Évaluation figée" not in body and "Évaluation calculée maintenant" in body
    # Declared eligible again, it freezes the new amount.
    services.declare_eligible(dossier, factories.staff(), now=NOW)
    assert dossier.computed_amount == Decimal("2000.00") and dossier.evaluation["amount"] == "2000.00"


def test_reopening_clears_the_frozen_evaluation(session):
    dossier = factories.dossier("eligible", aid=2)
    services.refuse(dossier, factories.staff(), "Projet abandonné", now=NOW)
    assert dossier.computed_amount == Decimal("4000.00")  # kept on the closed dossier, as decided
    services.reopen(dossier, factories.staff("admin"), "Le projet reprend", now=NOW)
    assert (dossier.state, dossier.evaluation, dossier.computed_amount) == ("received", None, None)
    assert envelope_figures.demand_of(dossier) == Decimal("4000.00")  # its requested amount


def test_the_grant_e_mail_shows_the_dossier_as_it_was_at_the_grant(app, session):
    from sqlalchemy import select

    from instruction.notifications.emails import build_email
    from instruction.notifications.models import Delivery, OutboxMessage

    dossier = factories.dossier("granted", aid=2, grant_amount=Decimal("3500.00"))
    first = session.scalar(select(OutboxMessage).where(
        OutboxMessage.dossier_id == dossier.id, OutboxMessage.kind == "grant"))
    # Before the worker sends it: the grant is cancelled and made again for less, the dossier
    # renamed, the collectivité renamed.
    services.cancel_grant(dossier, factories.staff("admin"), "Montant à revoir", now=NOW)
    services.grant(dossier, factories.staff(), Decimal("3000.00"), now=NOW)
    dossier.title = "Autre titre"
    dossier.collectivite.name = "Nouveau nom"
    session.flush()
    delivery = session.scalar(select(Delivery).where(Delivery.message_id == first.id).limit(1))
    with app.test_request_context():
        text = build_email(first, delivery).get_body(("plain",)).get_content()
    assert "subvention de 3\u00a0500,00\u00a0€ à votre dossier" in text
    assert "« Projet »" in text and "Autre titre" not in text
    assert first.context["collectivite"] == "CC de la Plaine Dijonnaise"
