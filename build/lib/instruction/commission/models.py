from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from instruction.accounts.models import User
from instruction.campaigns.models import Campaign
from instruction.db import Base, Money, UTCDateTime
from instruction.dossiers.models import Dossier

OUTCOMES = ("pending", "adopted", "amended", "deferred", "rejected")
OUTCOME_LABELS = {
    "pending": "En attente du vote",
    "adopted": "Adopté",
    "amended": "Adopté avec un autre montant",
    "deferred": "Ajourné",
    "rejected": "Rejeté",
}
RESULTS = ("granted", "reported")


class CommissionSession(Base):
    """A session of the commission permanente: its agenda (lines), then its deliberation."""

    __tablename__ = "commission_session"
    __table_args__ = (
        CheckConstraint("voted_at IS NULL OR deliberation_number IS NOT NULL", name="voted_has_number"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"), index=True)
    session_on: Mapped[date]
    place: Mapped[str] = mapped_column(String(200))
    deliberation_number: Mapped[str | None] = mapped_column(String(60), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    voted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    campaign: Mapped[Campaign] = relationship()
    created_by: Mapped[User | None] = relationship()
    lines: Mapped[list[SessionLine]] = relationship(
        back_populates="session", order_by="SessionLine.id", cascade="all, delete-orphan")


class SessionLine(Base):
    """One dossier proposed to a session, with the amount proposed, then the vote and its effect."""

    __tablename__ = "commission_line"
    __table_args__ = (
        UniqueConstraint("session_id", "dossier_id"),
        CheckConstraint("outcome IN ('pending', 'adopted', 'amended', 'deferred', 'rejected')",
                        name="outcome"),
        CheckConstraint("result IS NULL OR result IN ('granted', 'reported')", name="result"),
        CheckConstraint("proposed_amount > 0", name="proposed_positive"),
        CheckConstraint("voted_amount IS NULL OR voted_amount > 0", name="voted_positive"),
        CheckConstraint("(outcome IN ('adopted', 'amended')) = (voted_amount IS NOT NULL)",
                        name="adopted_has_amount"),
        CheckConstraint("result IS NULL OR outcome IN ('adopted', 'amended')", name="result_if_adopted"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("commission_session.id", ondelete="CASCADE"),
                                            index=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id", ondelete="CASCADE"), index=True)
    proposed_amount: Mapped[Decimal] = mapped_column(Money)
    proposed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    proposed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(10), default="pending")
    voted_amount: Mapped[Decimal | None] = mapped_column(Money)
    # What the batch did: granted, or reported (it no longer fits; the dossier stays eligible).
    result: Mapped[str | None] = mapped_column(String(10))
    report: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    session: Mapped[CommissionSession] = relationship(back_populates="lines")
    dossier: Mapped[Dossier] = relationship()
    proposed_by: Mapped[User | None] = relationship()

    @property
    def outcome_label(self) -> str:
        return OUTCOME_LABELS[self.outcome]
