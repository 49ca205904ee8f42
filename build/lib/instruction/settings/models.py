from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from instruction.db import Base, UTCDateTime


class ServiceIdentity(Base):
    """The one row of the service's identity (``id = 1``), shown on every legal act."""

    __tablename__ = "service_identity"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    # The authority (header of the letters), e.g. "Région Bourgogne-Franche-Comté".
    authority_name: Mapped[str] = mapped_column(String(200))
    # The service in charge of the requests (CRPA L112-3, R112-5).
    service_name: Mapped[str] = mapped_column(String(200))
    postal_address: Mapped[str] = mapped_column(Text)
    email: Mapped[str] = mapped_column(String(254))
    telephone: Mapped[str] = mapped_column(String(40))
    signatory_name: Mapped[str] = mapped_column(String(200))
    signatory_title: Mapped[str] = mapped_column(String(200))
    # Where the recours contentieux is brought.
    tribunal_name: Mapped[str] = mapped_column(String(200))
    tribunal_address: Mapped[str] = mapped_column(Text)
    telerecours_url: Mapped[str] = mapped_column(String(300))
    # The texts of the legal pages (mentions légales, données personnelles, déclaration
    # d'accessibilité), written by the admin; empty until then.
    legal_notice: Mapped[str] = mapped_column(Text, default="")
    privacy_notice: Mapped[str] = mapped_column(Text, default="")
    accessibility_statement: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
