from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from instruction.db import Base, UTCDateTime, clock_now
from instruction.territory.models import Collectivite

ROLES = ("applicant", "instructor", "finance", "admin")
ROLE_LABELS = {
    "applicant": "Demandeur",
    "instructor": "Instructeur",
    "finance": "Finances",
    "admin": "Administrateur",
}
STAFF_ROLES = ("instructor", "finance", "admin")


class User(UserMixin, Base):
    __tablename__ = "user_account"
    __table_args__ = (
        CheckConstraint("role IN ('applicant', 'instructor', 'finance', 'admin')", name="role"),
        CheckConstraint(
            "(role = 'applicant') = (collectivite_id IS NOT NULL)", name="applicant_has_collectivite"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    collectivite_id: Mapped[int | None] = mapped_column(ForeignKey("collectivite.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock_now)
    email_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # An applicant account gives access to its collectivité's dossiers only once someone entitled
    # (a Region admin, or an approved agent of the same collectivité) has approved it. Staff
    # accounts and accounts created by commands are approved at creation.
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    # Part of the id kept in the session and in the remember cookie (``get_id``): raising it ends
    # every session and remember cookie of the account (logout, password change, deactivation).
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Two-factor authentication (TOTP, RFC 6238) for staff: the shared secret, encrypted (a Fernet
    # token: two_factor.seal, never in clear), when it was confirmed, and the last 30-second step
    # accepted (a code is never accepted twice).
    totp_secret: Mapped[str | None] = mapped_column(String(255))
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)

    collectivite: Mapped[Collectivite | None] = relationship()
    approved_by: Mapped[User | None] = relationship(remote_side=[id], foreign_keys=[approved_by_id])

    @property
    def applicant_collectivite(self) -> Collectivite:
        """An applicant's collectivité (every applicant has one, CHECK applicant_has_collectivite;
        a staff account has none)."""
        assert self.collectivite is not None, f"{self.role} account {self.id} has no collectivité"
        return self.collectivite

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def get_id(self) -> str:  # Flask-Login: what the session and the remember cookie hold
        return f"{self.id}:{self.session_version}"

    @property
    def is_active(self) -> bool:  # Flask-Login
        return self.active

    @property
    def is_approved(self) -> bool:
        return self.approved_at is not None

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def role_label(self) -> str:
        return ROLE_LABELS[self.role]


class RecoveryCode(Base):
    """A single-use recovery code of the two-factor authentication, kept hashed."""

    __tablename__ = "recovery_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
