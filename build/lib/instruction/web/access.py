"""Loading what a view shows, or 404."""

from __future__ import annotations

from flask import abort

from instruction.accounts.models import User
from instruction.dossiers.access import visible_dossier
from instruction.dossiers.models import Dossier


def get_dossier_for(user: User, dossier_id: int) -> Dossier:
    """The dossier if ``user`` may see it; 404 otherwise (never reveal that it exists)."""
    dossier = visible_dossier(user, dossier_id)
    if dossier is None:
        abort(404)
    return dossier
