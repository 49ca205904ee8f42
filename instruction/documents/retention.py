"""Purge of the files of dossiers closed longer than the retention period.

A dossier is closed in the states the transition table marks as closing (paid, ineligible,
refused, withdrawn, expired); it closed at its latest audit event into that state. Once
``DOCUMENT_RETENTION_DAYS`` have passed, the files of its documents are deleted; the rows stay
(name, size, SHA-256, who and when), marked ``purged_at``, and one audit event per dossier says how
many files went and why. Files are deleted after the commit that marks them. A second run finds
nothing left to do (idempotent). Run nightly by the worker (``purge_documents``).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import exists, func, select

from instruction.dossiers.models import AuditEvent, Document, Dossier
from instruction.dossiers.workflow import CLOSED_STATES
from instruction.extensions import db
from instruction.storage.files import remove_files

log = logging.getLogger(__name__)

PURGE_ACTION = "purge_documents"


def closed_at():
    """When the dossier entered its current state (its latest audit event into it)."""
    return (select(func.max(AuditEvent.at))
            .where(AuditEvent.dossier_id == Dossier.id, AuditEvent.to_state == Dossier.state)
            .correlate(Dossier).scalar_subquery())


def purge_documents(now: datetime) -> str:
    """The periodic job ``purge_documents``: the files of dossiers closed longer than
    DOCUMENT_RETENTION_DAYS."""
    return purge_closed_dossier_files(now, retention_days=current_app.config["DOCUMENT_RETENTION_DAYS"])


def purge_closed_dossier_files(now: datetime, *, retention_days: int) -> str:
    """Delete the stored files of dossiers closed more than ``retention_days`` before ``now``; one
    commit per dossier (with its audit event), then its files."""
    if retention_days < 1:
        raise ValueError("the retention period is at least one day")
    cutoff = now - timedelta(days=retention_days)
    unpurged = exists(select(Document.id).where(Document.dossier_id == Dossier.id, Document.purged_at.is_(None)))
    ids = db.session.scalars(select(Dossier.id).where(Dossier.state.in_(CLOSED_STATES), unpurged,
                                                      closed_at() < cutoff).order_by(Dossier.id)).all()
    files = 0
    for dossier_id in ids:
        dossier = db.session.get_one(Dossier, dossier_id)
        documents = db.session.scalars(select(Document).where(Document.dossier_id == dossier_id,
                                                              Document.purged_at.is_(None))).all()
        keys = [d.storage_key for d in documents]
        for document in documents:
            document.purged_at = now
        db.session.add(AuditEvent(
            dossier=dossier, actor_id=None, action=PURGE_ACTION, from_state=dossier.state,
            to_state=dossier.state, at=now,
            reason=f"{len(keys)} pièce(s) supprimée(s) : dossier clos depuis plus de {retention_days} jours "
                   "(durée de conservation)."))
        db.session.commit()
        remove_files(keys)
        files += len(keys)
    if not ids:
        return "Aucune pièce à supprimer"
    return f"{files} pièce(s) supprimée(s) dans {len(ids)} dossier(s) clos depuis plus de {retention_days} jours"
