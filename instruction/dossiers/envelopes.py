"""Envelopes: what each cap (aid × cap scope, within a campaign) has committed.

Consuming is one conditional UPDATE, so two grants racing for the same envelope can never push it
past its cap: on PostgreSQL the second UPDATE waits for the first's row lock and re-checks its
condition; on SQLite transactions are serialised (``BEGIN IMMEDIATE``, see ``instruction.db``).
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from instruction.dossiers.models import Envelope
from instruction.extensions import db


def get_envelope(campaign_id: int, aid_number: int, scope: str, cap_limit: Decimal) -> Envelope:
    """The envelope row, created on first use (concurrent creations are harmless)."""
    insert = pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    db.session.execute(
        insert(Envelope)
        .values(campaign_id=campaign_id, aid_number=aid_number, scope=scope, cap_limit=cap_limit,
                consumed=Decimal("0.00"))
        .on_conflict_do_nothing(index_elements=["campaign_id", "aid_number", "scope"])
    )
    return db.session.scalar(select(Envelope).where(
        Envelope.campaign_id == campaign_id, Envelope.aid_number == aid_number,
        Envelope.scope == scope))


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
    return envelope.cap_limit - envelope.consumed
