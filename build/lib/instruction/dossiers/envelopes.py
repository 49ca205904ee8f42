"""Envelopes: what each cap (aid × cap scope, within a campaign) has committed.

The cap of an envelope comes from ONE function, ``cap_limit``: the aid's ``cap_amount`` parameter
in force at the instant asked (within the campaign's window), so a dated change of the parameter
applies from its date. ``get_envelope`` writes it on the row before each grant or release. A cap
lowered below what is already consumed is kept as it is (``over_cap``): it is shown on the pages
and refuses every new grant, nothing is taken back silently.

Consuming is one conditional UPDATE, so two grants racing for the same envelope can never push it
past its cap: on PostgreSQL the second UPDATE waits for the first's row lock and re-checks its
condition; on SQLite transactions are serialised (``BEGIN IMMEDIATE``, see ``instruction.db``).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from instruction.campaigns.models import Campaign
from instruction.campaigns.services import parameters_of
from instruction.dossiers.models import Envelope
from instruction.extensions import db

log = logging.getLogger(__name__)


def cap_limit(campaign: Campaign, aid: int, at: datetime) -> Decimal:
    """THE cap of an envelope of ``aid``: the parameter in force at ``at``, clamped to the
    campaign's window (a grant after the deadline uses the cap of the last day)."""
    params = parameters_of(campaign)
    instant = min(max(at, params.opens_at), params.deadline - timedelta(microseconds=1))
    return params.rules(aid, instant).cap_amount


def get_envelope(campaign: Campaign, aid_number: int, scope: str, at: datetime) -> Envelope:
    """The envelope row with the cap in force at ``at``, created on first use (concurrent
    creations are harmless)."""
    limit = cap_limit(campaign, aid_number, at)
    insert = pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    db.session.execute(
        insert(Envelope)
        .values(campaign_id=campaign.id, aid_number=aid_number, scope=scope, cap_limit=limit,
                consumed=Decimal("0.00"))
        .on_conflict_do_nothing(index_elements=["campaign_id", "aid_number", "scope"])
    )
    envelope = db.session.scalar(select(Envelope).where(
        Envelope.campaign_id == campaign.id, Envelope.aid_number == aid_number,
        Envelope.scope == scope))
    if envelope.cap_limit != limit:
        db.session.execute(update(Envelope).where(Envelope.id == envelope.id).values(cap_limit=limit)
                           .execution_options(synchronize_session=False))
        db.session.refresh(envelope)
        if over_cap(envelope):
            log.warning("Envelope %s (%s, aid %s): cap lowered to %s, below the %s already consumed",
                        envelope.id, scope, aid_number, limit, envelope.consumed)
    return envelope


def over_cap(envelope: Envelope) -> bool:
    """The cap was lowered below what the envelope had already committed."""
    return envelope.consumed > envelope.cap_limit


def consume(envelope: Envelope, amount: Decimal) -> bool:
    """Add ``amount`` to the envelope if it fits under the cap; False (and nothing changed) if not."""
    result = db.session.execute(
        update(Envelope)
        .where(Envelope.id == envelope.id, Envelope.consumed + amount <= Envelope.cap_limit)
        .values(consumed=Envelope.consumed + amount)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(envelope)
    return result.rowcount == 1


def release(envelope: Envelope, amount: Decimal) -> None:
    """Give back ``amount`` (a cancelled grant, the unpaid remainder of a final payment)."""
    if amount <= 0:
        return
    result = db.session.execute(
        update(Envelope)
        .where(Envelope.id == envelope.id, Envelope.consumed - amount >= 0)
        .values(consumed=Envelope.consumed - amount)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise RuntimeError(f"envelope {envelope.id} would go below zero releasing {amount}")
    db.session.refresh(envelope)


def remaining(envelope: Envelope) -> Decimal:
    """What can still be granted (never negative: an over-cap envelope has nothing left)."""
    return max(envelope.cap_limit - envelope.consumed, Decimal("0.00"))
