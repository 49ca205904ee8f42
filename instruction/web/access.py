"""Loading what a view shows, or 404."""

from __future__ import annotations

from typing import TypeVar

from flask import abort

T = TypeVar("T")


def found_or_404(value: T | None) -> T:
    """``value`` if there is one, else 404: what the user may not see (a dossier of another
    collectivité, say: ``dossiers.access.visible_dossier``) is never revealed to exist."""
    if value is None:
        abort(404)
    return value
