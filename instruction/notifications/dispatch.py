"""Queue a delivery task for each outbox row, after the commit that wrote it.

The session collects the ids of the ``OutboxMessage`` rows it flushes and queues one task per row
once the transaction has committed (never before: the worker must find the row). If the broker
cannot be reached the commit still stands: the error is logged, the row is marked not dispatched,
and the periodic re-dispatch (``jobs.dispatch_pending``) queues it when the broker is back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from flask import Flask, current_app
from sqlalchemy import event, update

from instruction.extensions import db
from instruction.notifications.models import OutboxMessage

log = logging.getLogger(__name__)
_KEY = "outbox_new_ids"


_PUBLISHER = "outbox_publisher"
Publisher = Callable[[int], None]  # queues the delivery of one outbox message


def set_publisher(app: Flask, publish: Publisher) -> None:
    """Given by the worker package at start-up (``worker.celery_app.install_publisher``), so that
    the notifications do not import the worker."""
    app.extensions[_PUBLISHER] = publish


def enqueue(message_ids: Iterable[int]) -> None:
    """Queue one delivery task per message (raises if the broker cannot be reached)."""
    publish = current_app.extensions.get(_PUBLISHER)
    if publish is None:
        raise RuntimeError("no outbox publisher: worker.celery_app.install_publisher(app) gives it")
    for message_id in message_ids:
        publish(message_id)


def _after_flush(session, flush_context) -> None:
    new = [obj.id for obj in session.new if isinstance(obj, OutboxMessage)]
    if new:
        session.info.setdefault(_KEY, set()).update(new)


def track(message_ids: Iterable[int]) -> None:
    """Outbox rows written without the ORM (``services.queue_many``): dispatched after the commit
    like the rows the session flushed."""
    db.session.info.setdefault(_KEY, set()).update(message_ids)


def _after_commit(session) -> None:
    if session.in_nested_transaction():
        return  # a SAVEPOINT released (SQLAlchemy calls after_commit for it): not committed yet
    ids = sorted(session.info.pop(_KEY, ()))
    if not ids or not current_app.config.get("NOTIFICATION_DISPATCH_ON_COMMIT"):
        return
    try:
        enqueue(ids)
    except Exception:
        log.exception("Could not queue the delivery of outbox messages %s; "
                      "the periodic re-dispatch will send them", ids)
        _mark_not_dispatched(ids)


def _mark_not_dispatched(ids: list[int]) -> None:
    """So that the next re-dispatch picks them up at once (best effort: after_commit cannot
    use the session, hence a connection of its own)."""
    try:
        with db.engine.begin() as connection:
            connection.execute(update(OutboxMessage).where(OutboxMessage.id.in_(ids))
                               .values(dispatched_at=None))
    except Exception:
        log.exception("Could not mark outbox messages %s as not dispatched", ids)


def _after_transaction_end(session, transaction) -> None:
    if transaction.parent is None:  # the outermost transaction ended without a commit
        session.info.pop(_KEY, None)


def register_session_hooks() -> None:
    if not event.contains(db.session, "after_flush", _after_flush):
        event.listen(db.session, "after_flush", _after_flush)
        event.listen(db.session, "after_commit", _after_commit)
        event.listen(db.session, "after_transaction_end", _after_transaction_end)
