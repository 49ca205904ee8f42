from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from instruction.db import Base, UTCDateTime


class AuditVerification(Base):
    """One verification of the audit chain: its result, shown on the admin home. The last good
    tip (``last_event_id``, ``last_hash``) anchors the next verification: rows removed from the end
    of the chain, which no later link would betray, are found missing."""

    __tablename__ = "audit_verification"

    id: Mapped[int] = mapped_column(primary_key=True)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ok: Mapped[bool] = mapped_column(Boolean)
    events_checked: Mapped[int]
    last_event_id: Mapped[int | None]
    last_hash: Mapped[str | None] = mapped_column(String(64))
    first_broken_id: Mapped[int | None]
    message: Mapped[str] = mapped_column(Text)
