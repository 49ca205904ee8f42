"""Queue notifications in the outbox, in the caller's transaction (delivery is the worker's job)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from instruction.db import insert_many, table_of
from instruction.extensions import db
from instruction.notifications import dispatch
from instruction.notifications.models import Delivery, OutboxMessage

if TYPE_CHECKING:  # the accounts send notifications: they are above this package
    from instruction.accounts.models import User


def queue(kind: str, *, key: str, recipients: Iterable[User], dossier=None,
          context: dict | None = None, now: datetime) -> OutboxMessage | None:
    """Write one outbox row and one delivery per recipient. ``key`` is unique: queuing the same
    key twice returns the existing row and adds nothing. ``now``: the instant of the event (the
    row's creation, its deliveries due from then).

    The row carries everything its e-mail shows, as it is now: for a dossier, its reference, title
    and collectivité are copied into ``context`` (the e-mail never reads the live dossier)."""
    existing = db.session.scalar(select(OutboxMessage).where(OutboxMessage.key == key))
    if existing is not None:
        return existing
    seen: set[str] = set()
    deliveries = []
    for user in recipients:
        if user is None or not user.active or user.email in seen:
            continue
        seen.add(user.email)
        deliveries.append(Delivery(user=user, email=user.email, next_attempt_at=now))
    if not deliveries:
        return None
    context = dict(context or {})
    if dossier is not None:
        context.setdefault("reference", dossier.reference)
        context.setdefault("title", dossier.title)
        context.setdefault("collectivite", dossier.collectivite.name)
    message = OutboxMessage(key=key, kind=kind, dossier=dossier, context=context,
                            deliveries=deliveries)
    message.created_at = message.dispatched_at = now
    db.session.add(message)
    return message


def mark_read(delivery: Delivery, *, now: datetime) -> None:
    """An in-app notification read (the first time counts)."""
    if delivery.read_at is None:
        delivery.read_at = now


def mark_all_read(user, *, now: datetime) -> None:
    db.session.execute(update(Delivery).where(Delivery.user_id == user.id, Delivery.read_at.is_(None))
                       .values(read_at=now))


@dataclass(frozen=True)
class Pending:
    """One message for ``queue_many``: its unique key, its dossier, what its e-mail shows (the
    dossier's reference, title and collectivité included), its recipients."""

    key: str
    context: dict
    recipients: Sequence[User]
    dossier_id: int | None = None


def queue_many(kind: str, messages: Iterable[Pending], *, now: datetime) -> int:
    """The bulk form of ``queue`` for the nightly jobs: one INSERT of the outbox rows (a key already
    there is skipped, as ``queue`` skips it), one INSERT of their deliveries, with the same rules
    (active recipients, one delivery per address, no row without a recipient), created and due at
    the job's instant ``now``; the rows are dispatched after the commit like the others. Returns the
    number of messages queued."""
    rows, recipients = [], {}
    for message in messages:
        deliveries, seen = [], set()
        for user in message.recipients:
            if user is None or not user.active or user.email in seen:
                continue
            seen.add(user.email)
            deliveries.append({"user_id": user.id, "email": user.email, "next_attempt_at": now})
        if deliveries and message.key not in recipients:
            recipients[message.key] = deliveries
            rows.append({"key": message.key, "kind": kind, "dossier_id": message.dossier_id,
                         "context": message.context, "created_at": now})
    if not rows:
        return 0
    connection = db.session.connection()
    upsert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    outbox = table_of(OutboxMessage)
    inserted = insert_many(connection, upsert(outbox).on_conflict_do_nothing(index_elements=["key"])
                           .returning(outbox.c.id, outbox.c.key, sort_by_parameter_order=True), rows).all()
    if inserted:
        insert_many(connection, insert(table_of(Delivery)), [
            {"message_id": message_id, **delivery}
            for message_id, key in inserted for delivery in recipients[key]])
        dispatch.track([message_id for message_id, _ in inserted])
    return len(inserted)
