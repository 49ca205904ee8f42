"""Loading what a view shows, or 404."""

from __future__ import annotations

from typing import TypeVar

from flask import abort
from flask.typing import BeforeRequestCallable
from flask_login import current_user

from instruction.extensions import login_manager

T = TypeVar("T")


def found_or_404(value: T | None) -> T:
    """``value`` if there is one, else 404: what the user may not see (a dossier of another
    collectivité, say: ``dossiers.access.visible_dossier``) is never revealed to exist."""
    if value is None:
        abort(404)
    return value


def staff_only(refusal: int) -> BeforeRequestCallable:
    """A blueprint's ``before_request`` for staff pages: anonymous to the login page; signed in but
    not staff (an applicant), ``refusal``: 404 where the page is not even said to exist (exports,
    the dashboard), 403 otherwise."""
    def guard():
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if not current_user.is_staff:
            abort(refusal)
        return None
    return guard
