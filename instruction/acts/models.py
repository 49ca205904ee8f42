from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from instruction.db import Base, UTCDateTime, check_in

if TYPE_CHECKING:  # the dossiers sit above the acts: the relationship is resolved by name
    from instruction.dossiers.models import Dossier

ACT_KINDS = ("acknowledgment", "grant", "ineligibility", "refusal", "cancellation")
ACT_TITLES = {
    "acknowledgment": "Accusé de réception",
    "grant": "Notification d'attribution de subvention",
    "ineligibility": "Notification d'inéligibilité",
    "refusal": "Notification de refus de subvention",
    "cancellation": "Notification d'annulation de l'attribution",
}
COMPLETED_ACKNOWLEDGMENT = "Accusé de réception du dossier complet"  # issued again on completion (L114-5)


def act_title(kind: str, content: dict) -> str:
    """The act's title: an acknowledgment issued on completion says so, so that the two of a
    dossier whose documents were asked can be told apart."""
    if kind == "acknowledgment" and content.get("completed_on"):
        return COMPLETED_ACKNOWLEDGMENT
    return ACT_TITLES[kind]


class LegalAct(Base):
    """An acknowledgment or a decision letter of a dossier.

    ``content`` is everything the document shows, copied at the event. The PDF is rendered from
    it once: ``storage_key`` (a file of the file store), ``sha256`` and ``size_bytes`` are
    set together, by a conditional UPDATE, and never change afterwards."""

    __tablename__ = "legal_act"
    __table_args__ = (
        CheckConstraint(check_in("kind", ACT_KINDS), name="kind"),
        CheckConstraint("(storage_key IS NULL) = (sha256 IS NULL)", name="rendered_has_sha256"),
        CheckConstraint("(storage_key IS NULL) = (rendered_at IS NULL)", name="rendered_has_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    content: Mapped[dict] = mapped_column(JSON)
    storage_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    sha256: Mapped[str | None] = mapped_column(String(64))
    size_bytes: Mapped[int | None]
    rendered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    dossier: Mapped[Dossier] = relationship("Dossier")

    @property
    def title(self) -> str:
        return act_title(self.kind, self.content)

    @property
    def file_name(self) -> str:
        return f"{self.content.get('reference') or self.dossier_id}-{self.kind}-{self.id}.pdf"
