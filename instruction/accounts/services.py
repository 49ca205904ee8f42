"""Account operations: authentication, creation, registration, e-mail confirmation, password reset.

Links sent by e-mail are signed tokens (itsdangerous, keyed by SECRET_KEY) and go through the
notification outbox (``notifications.queue``) in the caller's transaction. A reset token carries a
fingerprint of the current password hash: once the password changes, the link is dead.
"""

from __future__ import annotations

import hashlib

from flask import current_app, url_for
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, select

from instruction.accounts.models import ROLES, User
from instruction.accounts.passwords import password_problems
from instruction.db import utcnow
from instruction.extensions import db
from instruction.notifications import services as notifications
from instruction.notifications.models import OutboxMessage

CONFIRM_SALT = "account-confirmation"
RESET_SALT = "password-reset"
CONFIRM_MAX_AGE = 7 * 24 * 3600  # seconds
RESET_MAX_AGE = 3600


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


# --- registration and e-mail confirmation ----------------------------------------------------------


def check_password(password: str, email: str) -> None:
    """AccountError with every broken rule (French), or nothing."""
    problems = password_problems(password, email)
    if problems:
        raise AccountError(" ".join(problems))


def register_applicant(*, email: str, full_name: str, password: str, collectivite) -> User:
    """An unconfirmed applicant account of ``collectivite``; the confirmation link is queued."""
    check_password(password, email)
    if find_user_by_email(email) is not None:
        raise AccountError("Un compte existe déjà avec cette adresse électronique : connectez-vous, "
                           "ou utilisez « Mot de passe oublié » si vous ne vous en souvenez plus.")
    user = create_user(email=email, full_name=full_name.strip(), password=password, role="applicant",
                       collectivite=collectivite, confirmed=False)
    send_confirmation(user)
    return user


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)


def _external_url(endpoint: str, **values) -> str:
    """A link for an e-mail: BASE_URL (the public address) and the route's path."""
    return current_app.config["BASE_URL"].rstrip("/") + url_for(endpoint, **values)


def _next_key(user: User, purpose: str) -> str:
    """``account:<id>:<purpose>:<n>``: one outbox row per e-mail actually requested."""
    prefix = f"account:{user.id}:{purpose}:"
    sent = db.session.scalar(select(func.count()).select_from(OutboxMessage)
                             .where(OutboxMessage.key.startswith(prefix, autoescape=True)))
    return f"{prefix}{sent + 1}"


def confirmation_token(user: User) -> str:
    return _serializer(CONFIRM_SALT).dumps({"uid": user.id, "email": user.email})


def send_confirmation(user: User) -> None:
    """Queue the e-mail with the confirmation link (kind ``account_confirmation``)."""
    notifications.queue(
        "account_confirmation", key=_next_key(user, "confirm"), recipients=[user],
        context={"url": _external_url("auth.confirm", token=confirmation_token(user)),
                 "full_name": user.full_name, "email": user.email,
                 "collectivite": user.collectivite.name if user.collectivite else None,
                 "expires_in_days": CONFIRM_MAX_AGE // 86400},
    )


def resend_confirmation(email: str) -> None:
    """Queue a new link if an unconfirmed account has this e-mail; silent otherwise (the answer
    must not tell who has an account)."""
    user = find_user_by_email(email)
    if user is not None and user.active and user.email_confirmed_at is None:
        send_confirmation(user)


def confirm_email(token: str, *, max_age: int = CONFIRM_MAX_AGE) -> User:
    """Mark the account of ``token`` confirmed (idempotent); AccountError if the link is bad."""
    try:
        data = _serializer(CONFIRM_SALT).loads(token, max_age=max_age)
    except SignatureExpired:
        raise AccountError("Ce lien de confirmation a expiré : connectez-vous pour en recevoir un "
                           "nouveau.") from None
    except BadSignature:
        raise AccountError("Ce lien de confirmation n'est pas valable : vérifiez qu'il a été copié "
                           "en entier.") from None
    user = db.session.get(User, data.get("uid")) if isinstance(data, dict) else None
    if user is None or user.email != data.get("email"):
        raise AccountError("Ce lien de confirmation n'est pas valable.")
    if user.email_confirmed_at is None:
        user.email_confirmed_at = utcnow()
    return user


# --- password reset --------------------------------------------------------------------------------


def _fingerprint(user: User) -> str:
    return hashlib.sha256(user.password_hash.encode("utf-8")).hexdigest()[:20]


def reset_token(user: User) -> str:
    return _serializer(RESET_SALT).dumps({"uid": user.id, "pw": _fingerprint(user)})


def request_password_reset(email: str) -> None:
    """Queue a reset link (kind ``password_reset``) if an active account has this e-mail; silent
    otherwise."""
    user = find_user_by_email(email)
    if user is None or not user.active:
        return
    notifications.queue(
        "password_reset", key=_next_key(user, "reset"), recipients=[user],
        context={"url": _external_url("auth.reset_password", token=reset_token(user)),
                 "full_name": user.full_name, "email": user.email,
                 "expires_in_minutes": RESET_MAX_AGE // 60},
    )


def user_for_reset(token: str, *, max_age: int = RESET_MAX_AGE) -> User:
    """The user a reset link is for; AccountError if it expired, was used or is forged."""
    try:
        data = _serializer(RESET_SALT).loads(token, max_age=max_age)
    except SignatureExpired:
        raise AccountError("Ce lien de réinitialisation a expiré (il est valable une heure) : "
                           "demandez-en un nouveau.") from None
    except BadSignature:
        raise AccountError("Ce lien de réinitialisation n'est pas valable : vérifiez qu'il a été "
                           "copié en entier, ou demandez-en un nouveau.") from None
    user = db.session.get(User, data.get("uid")) if isinstance(data, dict) else None
    if user is None or not user.active or data.get("pw") != _fingerprint(user):
        raise AccountError("Ce lien de réinitialisation a déjà servi ou n'est plus valable : "
                           "demandez-en un nouveau.")
    return user


def reset_password(token: str, password: str, *, max_age: int = RESET_MAX_AGE) -> User:
    """Set a new password through a reset link (which dies with the old password hash). Receiving
    the link proves the address, so the account is confirmed too."""
    user = user_for_reset(token, max_age=max_age)
    check_password(password, user.email)
    user.set_password(password)
    if user.email_confirmed_at is None:
        user.email_confirmed_at = utcnow()
    return user

