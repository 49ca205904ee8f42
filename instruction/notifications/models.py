from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from instruction.db import Base, UTCDateTime, clock_now

if TYPE_CHECKING:  # the accounts send notifications: they are above this package
    from instruction.accounts.models import User

DELIVERY_STATUSES = ("pending", "sent", "failed")


class OutboxMessage(Base):
    """A notification to deliver. ``key`` is unique, so the same event can never be queued twice."""

    __tablename__ = "outbox_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(60))
    dossier_id: Mapped[int | None] = mapped_column(ForeignKey("dossier.id", ondelete="SET NULL"), index=True)
    context: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock_now)
    # When a delivery task was last queued for it, or is due to run (a retry); None when queuing
    # failed. The periodic re-dispatch leaves rows queued recently alone (no duplicate tasks).
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=clock_now)

    dossier = relationship("Dossier")
    deliveries: Mapped[list[Delivery]] = relationship(
        back_populates="message", order_by="Delivery.id", cascade="all, delete-orphan"
    )


class Delivery(Base):
    """One recipient of one message: e-mail delivery status, and the in-app notification."""

    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint("message_id", "email"),
        CheckConstraint("status IN ('pending', 'sent', 'failed')", name="status"),
        CheckConstraint("attempts >= 0", name="attempts_positive"),
        CheckConstraint("status <> 'sent' OR sent_at IS NOT NULL", name="sent_has_instant"),
        Index("ix_delivery_status_next", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("outbox_message.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=clock_now)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Set while a worker holds the delivery (its claim), cleared when the attempt is recorded: a
    # claim whose lease (``next_attempt_at``) has passed was left by a worker that died.
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    message: Mapped[OutboxMessage] = relationship(back_populates="deliveries")
    user: Mapped[User | None] = relationship("User")


class JobRun(Base):
    """The last run of each periodic job, for `instruction worker status`."""

    __tablename__ = "job_run"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str | None] = mapped_column(String(10))
    summary: Mapped[str | None] = mapped_column(Text)
