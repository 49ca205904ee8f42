"""Queue a delivery task for each outbox row, after the commit that wrote it.

The session collects the ids of the ``OutboxMessage`` rows it flushes and queues their delivery
once the transaction has committed (never before: the worker must find the row). If the broker
cannot be reached the commit still stands: the error is logged, the row is marked not dispatched,
and the periodic re-dispatch (``jobs.dispatch_pending``) queues it when the broker is back.

The publisher (the worker's) queues one delivery task for a single message; for several (a batch
of a nightly job, a re-dispatch) it queues one task per ``CHUNK`` messages, which queues their
delivery tasks from the worker: the committing process publishes once per batch, not once per
message, and each message is still delivered, retried and throttled by its own task.
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
Publisher = Callable[[list[int]], None]  # queues the delivery of these outbox messages
CHUNK = 500  # messages per publish (the nightly jobs' batch)


def set_publisher(app: Flask, publish: Publisher) -> None:
    """Given by the worker package at start-up (``worker.celery_app.install_publisher``), so that
    the notifications do not import the worker."""
    app.extensions[_PUBLISHER] = publish


def enqueue(message_ids: Iterable[int]) -> None:
    """Queue the delivery of each message, ``CHUNK`` messages per publish (raises if the broker
    cannot be reached)."""
    publish = current_app.extensions.get(_PUBLISHER)
    if publish is None:
        raise RuntimeError("no outbox publisher: worker.celery_app.install_publisher(app) gives it")
    ids = list(message_ids)
    for start in range(0, len(ids), CHUNK):
        publish(ids[start:start + CHUNK])


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
        mark_not_dispatched(ids)


def mark_not_dispatched(ids: list[int]) -> None:
    """So that the next re-dispatch picks them up at once (best effort: after_commit cannot
    use the session, hence a connection of its own; nor can the worker's task that queues the
    deliveries of several messages, which has no transaction of its own)."""
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
