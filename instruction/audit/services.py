"""Verifying the audit chain, and recording the result (``instruction audit verify``, nightly)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from instruction.audit.chain import GENESIS, journal_table, row_hash
from instruction.audit.models import AuditVerification
from instruction.extensions import db
from instruction.rules.formatting import format_date_fr, format_integer
from instruction.rules.parameters import paris_date

BATCH = 1000


@dataclass(frozen=True)
class Verification:
    ok: bool
    events_checked: int
    message: str
    first_broken_id: int | None = None
    last_event_id: int | None = None
    last_hash: str | None = None


def verify_chain(anchor: AuditVerification | None = None) -> Verification:
    """Walk the chain in ``id`` order; the first row whose link or content is wrong is named.
    ``anchor`` (the last good verification) must still be in the chain, with its hash."""
    table = journal_table()
    previous_hash, previous_id, checked = GENESIS, None, 0
    anchor_seen = anchor is None or anchor.last_event_id is None
    rows = db.session.execute(sa.select(table).order_by(table.c.id).execution_options(yield_per=BATCH))
    for row in rows.mappings():
        if row["prev_hash"] != previous_hash:
            after = f"l'événement n° {previous_id}" if previous_id else "le début du journal"
            return Verification(False, checked, (
                f"Chaîne rompue à l'événement n° {row['id']} : il ne suit pas {after} "
                "(un événement a été supprimé, inséré ou déplacé)."), first_broken_id=row["id"])
        if row_hash(row) != row["hash"]:
            return Verification(False, checked, (
                f"Chaîne rompue à l'événement n° {row['id']} : son contenu a été modifié "
                "après son enregistrement."), first_broken_id=row["id"])
        if not anchor_seen and anchor is not None and row["id"] == anchor.last_event_id:
            if row["hash"] != anchor.last_hash:  # pragma: no cover - its own hash check fails first
                return Verification(False, checked, f"L'événement n° {row['id']} a été remplacé.",
                                    first_broken_id=row["id"])
            anchor_seen = True
        previous_hash, previous_id, checked = row["hash"], row["id"], checked + 1
    if not anchor_seen:
        assert anchor is not None  # without an anchor, anchor_seen starts True
        return Verification(False, checked, (
            f"Chaîne rompue : l'événement n° {anchor.last_event_id}, vérifié le "
            f"{format_date_fr(paris_date(anchor.checked_at))}, et ceux qui le suivaient ont disparu."),
            first_broken_id=anchor.last_event_id)
    return Verification(True, checked, f"Journal intègre : {format_integer(checked)} événements vérifiés.",
                        last_event_id=previous_id, last_hash=previous_hash if previous_id else None)


def last_verification() -> AuditVerification | None:
    return db.session.scalar(sa.select(AuditVerification).order_by(AuditVerification.id.desc()).limit(1))


def last_good_verification() -> AuditVerification | None:
    return db.session.scalar(sa.select(AuditVerification).where(AuditVerification.ok)
                             .order_by(AuditVerification.id.desc()).limit(1))


def verify_and_record(now: datetime) -> Verification:
    """Verify the chain and store the result (the caller commits)."""
    result = verify_chain(last_good_verification())
    db.session.add(AuditVerification(
        checked_at=now, ok=result.ok, events_checked=result.events_checked,
        last_event_id=result.last_event_id, last_hash=result.last_hash,
        first_broken_id=result.first_broken_id, message=result.message))
    return result
