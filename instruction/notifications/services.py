"""Queue notifications in the outbox, in the caller's transaction (delivery is the worker's job)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, update

from instruction.accounts.models import User
from instruction.extensions import db
from instruction.notifications.models import Delivery, OutboxMessage


def queue(kind: str, *, key: str, recipients: Iterable[User], dossier=None,
          context: dict | None = None, now: datetime | None = None) -> OutboxMessage | None:
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
        deliveries.append(Delivery(user=user, email=user.email))
        if now is not None:
            deliveries[-1].next_attempt_at = now
    if not deliveries:
        return None
    context = dict(context or {})
    if dossier is not None:
        context.setdefault("reference", dossier.reference)
        context.setdefault("title", dossier.title)
        context.setdefault("collectivite", dossier.collectivite.name)
    message = OutboxMessage(key=key, kind=kind, dossier=dossier, context=context,
                            deliveries=deliveries)
    if now is not None:
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
