"""The cap of an envelope follows a dated change of its parameter; a cap lowered below what is
already committed is reported and refuses grants, never silently exceeded nor rewritten.

The demo campaign's parameter file is read with two dated values added for aid 2's cap (the
parameter loader is given that text: the rule code, the database and the pages are the real ones).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources

import pytest
from sqlalchemy import select

from instruction import rules
from instruction.backoffice import envelope_figures
from instruction.campaigns import services as campaign_services
from instruction.dossiers import envelopes, services
from instruction.dossiers.models import Envelope
from instruction.rules.parameters import parse_campaign
from tests import factories
from tests.factories import NOW

DEMO_CAP = '      2021-01-01: {value: "30000.00", reference: "Guide des aides numériques, aide 2 : plafond de 30 000 €"}\n'
RAISED = datetime(2027, 1, 15, 9, 0, tzinfo=UTC)  # after the raise of 1 January 2027
LOWERED = datetime(2027, 3, 15, 9, 0, tzinfo=UTC)  # after the lowering of 1 March 2027


@pytest.fixture
def dated_caps(monkeypatch):
    text = resources.files("instruction.rules").joinpath("parameters/demo.yaml").read_text("utf-8")
    assert DEMO_CAP in text
    text = text.replace(DEMO_CAP, DEMO_CAP
                        + '      2027-01-01: {value: "36000.00", reference: "Délibération du 12 décembre 2026"}\n'
                        + '      2027-03-01: {value: "3000.00", reference: "Délibération du 20 février 2027"}\n')
    params = parse_campaign(text, "parameters/demo.yaml", "demo")
    real = rules.load_campaign
    fake = lambda code: params if code == "demo" else real(code)  # noqa: E731
    monkeypatch.setattr(rules, "load_campaign", fake)
    monkeypatch.setattr(campaign_services, "load_campaign", fake)


def envelope_row(session) -> Envelope:
    return session.scalar(select(Envelope).where(Envelope.scope == "epci:200000925", Envelope.aid_number == 2))


def test_the_cap_follows_its_dated_changes(session, dated_caps):
    campaign = factories.campaign()
    assert envelopes.cap_limit(campaign, 2, NOW) == Decimal("30000.00")
    assert envelopes.cap_limit(campaign, 2, RAISED) == Decimal("36000.00")
    assert envelopes.cap_limit(campaign, 2, LOWERED) == Decimal("3000.00")
    big = [{"category": "equipement", "label": "Serveurs", "amount_ht": "70000.00"}]  # 28,000 €
    first = factories.dossier("granted", aid=2, lines=big)  # granted in November 2026
    assert first.granted_amount == Decimal("28000.00")
    assert envelope_row(session).cap_limit == Decimal("30000.00")
    # In January 2027 the envelope has 36,000 − 28,000 = 8,000 € left, not 2,000 €.
    second = factories.dossier("eligible", aid=2, lines=big, now=RAISED)
    assert second.computed_amount == Decimal("8000.00")
    services.grant(second, factories.staff(), now=RAISED)
    row = envelope_row(session)
    assert (row.cap_limit, row.consumed) == (Decimal("36000.00"), Decimal("36000.00"))
    figures = envelope_figures.for_dossier(second, RAISED)
    assert (figures.limit, figures.remaining, figures.over_cap) == (Decimal("36000.00"), Decimal("0.00"), False)


def test_a_cap_lowered_below_the_committed_is_reported_and_refuses_grants(client, session, dated_caps):
    granted = factories.dossier("granted", aid=2)  # 4,000 € in November 2026
    waiting = factories.dossier("eligible", aid=2, now=RAISED)  # asks 4,000 € more
    session.commit()
    # From 1 March 2027 the cap is 3,000 €: below the 4,000 € already granted.
    figures = envelope_figures.for_dossier(waiting, LOWERED)
    assert (figures.limit, figures.consumed, figures.remaining, figures.over_cap) == \
        (Decimal("3000.00"), Decimal("4000.00"), Decimal("0.00"), True)
    with pytest.raises(services.ActionConflict, match="abaissé à 3\u00a0000,00\u00a0€.*4\u00a0000,00\u00a0€"):
        services.grant(waiting, factories.staff(), Decimal("100.00"), now=LOWERED)
    session.rollback()
    row = envelope_row(session)
    assert row.consumed == Decimal("4000.00") and granted.granted_amount == Decimal("4000.00")
    # Cancelling the grant under the lowered cap releases it (no constraint breaks on the way).
    services.cancel_grant(granted, factories.staff("admin"), "Erreur", now=LOWERED)
    row = envelope_row(session)
    assert (row.cap_limit, row.consumed) == (Decimal("3000.00"), Decimal("0.00"))
    session.rollback()
    # The dossier page says it.
    import instruction.clock

    factories.staff_logged_in(client, session)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(instruction.clock, "now", lambda: LOWERED)
        body = client.get(f"/instruction/dossiers/{waiting.id}").get_data(as_text=True)
    assert 'data-testid="over-cap"' in body and "Aucune nouvelle attribution n'est possible" in body
