"""Staff-only data about dossiers: labels, notes, "last seen", e-mail preferences (the followers,
who a dossier's notifications go to, are the dossier's: ``dossiers.models.DossierFollower``).

None of it is ever shown to applicants (pages, e-mails, exports): the portal never loads it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from instruction.accounts.models import User
from instruction.db import Base, UTCDateTime

# The colours an admin may give a label (Bootstrap's palette: readable badges in both themes).
LABEL_COLOURS = {
    "primary": "Bleu",
    "success": "Vert",
    "warning": "Jaune",
    "danger": "Rouge",
    "info": "Cyan",
    "secondary": "Gris",
    "dark": "Noir",
}
MESSAGE_EMAIL_CHOICES = {
    "grouped": "Un courriel par dossier et par heure au plus",
    "digest": "Dans la synthèse quotidienne",
}


class Label(Base):
    """A label defined by an admin ("prêt pour la commission"), put on dossiers by staff."""

    __tablename__ = "label"
    __table_args__ = (
        CheckConstraint("colour IN ('primary', 'success', 'warning', 'danger', 'info', 'secondary', "
                        "'dark')", name="colour"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    colour: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DossierLabel(Base):
    __tablename__ = "dossier_label"

    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id", ondelete="CASCADE"), primary_key=True)
    label_id: Mapped[int] = mapped_column(ForeignKey("label.id", ondelete="CASCADE"), primary_key=True,
                                          index=True)
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)

    label: Mapped[Label] = relationship()


class DossierNote(Base):
    """A private note of the staff on a dossier."""

    __tablename__ = "dossier_note"

    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    author: Mapped[User | None] = relationship()


class DossierView(Base):
    """When a staff member last opened a dossier: what changed after it is marked for them."""

    __tablename__ = "dossier_view"

    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id", ondelete="CASCADE"), primary_key=True,
                                            index=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StaffPreference(Base):
    """How a staff member wants to hear of applicants' messages (default: grouped)."""

    __tablename__ = "staff_preference"
    __table_args__ = (CheckConstraint("message_emails IN ('grouped', 'digest')", name="message_emails"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True)
    message_emails: Mapped[str] = mapped_column(String(10), default="grouped")
