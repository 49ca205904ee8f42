"""Dossier operations. State changes go through the transition table (workflow issue)."""

from __future__ import annotations

from decimal import Decimal

from instruction.campaigns.models import Campaign
from instruction.dossiers.models import AuditEvent, Dossier, ExpenseLine
from instruction.extensions import db


def reference_for(dossier: Dossier) -> str:
    """Human-readable and unique: ``PAIR21-A4-000123`` (campaign prefix, aid, dossier number)."""
    return f"{dossier.campaign.reference_prefix}-A{dossier.aid_number}-{dossier.id:06d}"


def create_draft(*, campaign: Campaign, aid_number: int, collectivite, author, title: str = "") -> Dossier:
    dossier = Dossier(campaign=campaign, aid_number=aid_number, collectivite=collectivite,
                      created_by=author, title=title, state="draft")
    db.session.add(dossier)
    db.session.flush()
    dossier.reference = reference_for(dossier)
    db.session.add(AuditEvent(dossier=dossier, actor=author, action="create", from_state=None,
                              to_state="draft", reason=None))
    return dossier


def add_line(dossier: Dossier, *, category: str, label: str, amount_ht: Decimal,
             pack: int | None = None, months: int | None = None) -> ExpenseLine:
    line = ExpenseLine(category=category, label=label, amount_ht=amount_ht, pack=pack, months=months)
    dossier.lines.append(line)
    return line
