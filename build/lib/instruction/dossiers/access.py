"""Who may see what: the one place that loads a dossier for a user (no Flask here: the views turn
"not visible" into a 404, ``instruction.web.access``)."""

from __future__ import annotations

from sqlalchemy import Select

from instruction.accounts.models import User
from instruction.dossiers.models import Dossier
from instruction.extensions import db


def can_see(user: User, dossier: Dossier) -> bool:
    """An applicant sees the dossiers of their collectivité; staff see every dossier once it is
    submitted (a draft belongs to its collectivité until then)."""
    if dossier.discarded_at is not None:
        return False
    if user.is_staff:
        return dossier.state != "draft"
    return user.role == "applicant" and dossier.collectivite_id == user.collectivite_id


def visible_dossiers(user: User, query: Select) -> Select:
    """Restrict a ``select(Dossier)`` to what ``user`` may see."""
    if user.is_staff:
        return query.where(Dossier.state != "draft")
    return query.where(Dossier.collectivite_id == user.collectivite_id, Dossier.discarded_at.is_(None))


def visible_dossier(user: User, dossier_id: int) -> Dossier | None:
    """The dossier if ``user`` may see it; None otherwise, whether it exists or not."""
    dossier = db.session.get(Dossier, dossier_id)
    if dossier is None or not can_see(user, dossier):
        return None
    return dossier
