"""Running a service from a view: commit on success, roll back and report on refusal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from instruction.errors import Refusal
from instruction.extensions import db


def perform(operation: Callable[..., Any], *args, **kwargs) -> Refusal | None:
    """Call a service and commit. On a refusal, roll back and return the error (its ``message``
    is French, its ``status`` is the HTTP code to answer with: 400, 403 or 409). Any other
    exception also rolls back, then propagates."""
    try:
        operation(*args, **kwargs)
        db.session.commit()
    except Refusal as error:
        db.session.rollback()
        return error
    except Exception:
        db.session.rollback()
        raise
    return None
