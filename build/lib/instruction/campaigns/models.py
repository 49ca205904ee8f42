from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from instruction.db import Base, UTCDateTime


class Campaign(Base):
    """A campaign: its dates and the rule parameter file it applies (``parameters_code``).

    A campaign loaded from a parameter file mirrors it (same code); an admin may create one from
    an existing campaign (its parameter set, new dates) or move its dates (open or close early):
    ``dates_set_by_admin`` then keeps ``campaigns load`` from putting the file's dates back."""

    __tablename__ = "campaign"
    __table_args__ = (CheckConstraint("opens_at < deadline_at", name="opens_before_deadline"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(30), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    reference_prefix: Mapped[str] = mapped_column(String(12))
    opens_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Submission is accepted strictly before this instant.
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime)
    parameters_code: Mapped[str] = mapped_column(String(30))
    dates_set_by_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    # Grants are voted by the commission permanente (parameter ``acts.grants_need_vote``).
    grants_need_vote: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    aids: Mapped[list[Aid]] = relationship(back_populates="campaign", order_by="Aid.number")


class Aid(Base):
    __tablename__ = "aid"
    __table_args__ = (
        UniqueConstraint("campaign_id", "number"),
        CheckConstraint("number BETWEEN 1 AND 5", name="number"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"))
    number: Mapped[int]
    title: Mapped[str] = mapped_column(String(200))

    campaign: Mapped[Campaign] = relationship(back_populates="aids")
