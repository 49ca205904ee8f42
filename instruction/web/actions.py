"""The unit of work of a request: a view runs its service through ``perform`` (or ``attempt``, which
also hands back what the service returned), which commits on success, rolls back and reports on
a refusal. No view commits or rolls back itself (``tests/test_unit_of_work.py``); files a service
stored for rows that end up rolled back are removed (``storage.files``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from instruction.errors import Refusal
from instruction.extensions import db

T = TypeVar("T")


@dataclass
class Outcome(Generic[T]):
    """What ``attempt`` gives back: the service's value, or its refusal (then ``value`` is None)."""

    value: T | None = None
    error: Refusal | None = None


def attempt(operation: Callable[..., T], *args, **kwargs) -> Outcome[T]:
    """Call a service and commit. On a refusal, roll back and return it in the outcome (its
    ``message`` is French, its ``status`` the HTTP code to answer with: 400, 403 or 409). Any
    other exception (an IntegrityError of a double submission, say) also rolls back, then
    propagates."""
    try:
        value = operation(*args, **kwargs)
        db.session.commit()
    except Refusal as error:
        db.session.rollback()
        return Outcome(error=error)
    except Exception:
        db.session.rollback()
        raise
    return Outcome(value=value)


def perform(operation: Callable[..., Any], *args, **kwargs) -> Refusal | None:
    """``attempt`` when only the refusal matters: the error, or None once committed."""
    return attempt(operation, *args, **kwargs).error
