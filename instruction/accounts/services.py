"""Account operations: authentication and creation."""

from __future__ import annotations

from sqlalchemy import func, select

from instruction.accounts.models import ROLES, User
from instruction.db import utcnow
from instruction.extensions import db


class AccountError(ValueError):
    """A French message for the person who asked."""


def normalise_email(email: str) -> str:
    return email.strip().lower()


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.email) == normalise_email(email)))


def authenticate(email: str, password: str) -> User | None:
    """The active user with these credentials, or None (same answer for unknown e-mail and bad password)."""
    user = find_user_by_email(email)
    if user is None or not user.active or not user.check_password(password):
        return None
    user.last_login_at = utcnow()
    return user


def create_user(*, email: str, full_name: str, password: str, role: str, collectivite=None,
                confirmed: bool = True) -> User:
    if role not in ROLES:
        raise AccountError(f"Rôle inconnu : {role}")
    if (role == "applicant") != (collectivite is not None):
        raise AccountError("Un demandeur appartient à une collectivité, et seulement un demandeur.")
    if find_user_by_email(email) is not None:
        raise AccountError("Un compte existe déjà avec cette adresse électronique.")
    user = User(email=normalise_email(email), full_name=full_name, role=role, collectivite=collectivite,
                email_confirmed_at=utcnow() if confirmed else None)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    return user
