"""Two-factor authentication (TOTP, RFC 6238) for staff, with single-use recovery codes.

Instructors and finance may turn it on; admins must (they enrol at their first login). A code is
accepted in the 30-second step before, at and after the server's instant, and never twice: the last
step accepted is kept on the account and moved by a conditional UPDATE, so two requests racing with
the same code let one in. Recovery codes are random, shown once, stored hashed, used once.
Attempts are throttled by the views (Flask-Limiter, ``TOTP_RATE_LIMIT``). Services never commit.
"""

from __future__ import annotations

import hmac
import re
import secrets
from datetime import datetime

import pyotp
import segno
from sqlalchemy import delete, or_, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from instruction.accounts.models import RecoveryCode, User
from instruction.accounts.services import AccountError
from instruction.extensions import db

ISSUER = "Aides numériques BFC"
STEP = 30  # seconds (RFC 6238 default, what every authenticator app uses)
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i
_SIX_DIGITS = re.compile(r"[0-9]{6}")


def required(user: User) -> bool:
    """Whether ``user`` must give a code after the password: staff who turned it on, and admins."""
    return user.is_staff and (user.totp_enabled_at is not None or user.role == "admin")


def must_enrol(user: User) -> bool:
    """An admin without two-factor authentication enrols before the login completes."""
    return user.role == "admin" and user.totp_enabled_at is None


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The QR code of ``uri`` as inline SVG, made here (no external service, no script)."""
    return segno.make(uri, error="m").svg_inline(scale=5, dark="#000", light="#fff")


def _step(now: datetime) -> int:
    return int(now.timestamp()) // STEP


def _matching_step(secret: str, code: str, now: datetime) -> int | None:
    totp = pyotp.TOTP(secret)
    current = _step(now)
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.at(step * STEP), code):
            return step
    return None


def _normalise(code: str) -> str:
    return re.sub(r"[\s-]", "", code or "").lower()


def verify(user: User, code: str, *, now: datetime) -> bool:
    """Whether ``code`` (six digits, or a recovery code) proves ``user``'s second factor now. A
    code accepted is spent: the same six digits, or the same recovery code, never work again."""
    code = _normalise(code)
    if user.totp_secret is None or user.totp_enabled_at is None:
        return False
    if _SIX_DIGITS.fullmatch(code):
        step = _matching_step(user.totp_secret, code, now)
        if step is None:
            return False
        result = db.session.execute(
            update(User).where(User.id == user.id,
                               or_(User.totp_last_step.is_(None), User.totp_last_step < step))
            .values(totp_last_step=step).execution_options(synchronize_session=False))
        db.session.expire(user, ["totp_last_step"])
        return result.rowcount == 1
    return _use_recovery_code(user, code, now)


def _use_recovery_code(user: User, code: str, now: datetime) -> bool:
    if len(code) != 10:
        return False
    unused = db.session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == user.id,
                                                           RecoveryCode.used_at.is_(None))).all()
    for row in unused:
        if check_password_hash(row.code_hash, code):
            result = db.session.execute(
                update(RecoveryCode).where(RecoveryCode.id == row.id, RecoveryCode.used_at.is_(None))
                .values(used_at=now).execution_options(synchronize_session=False))
            return result.rowcount == 1
    return False


def remaining_recovery_codes(user: User) -> int:
    return len(db.session.scalars(select(RecoveryCode.id).where(
        RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))).all())


def _new_recovery_codes(user: User, now: datetime) -> list[str]:
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = ["".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10)) for _ in range(RECOVERY_CODES)]
    for code in codes:
        db.session.add(RecoveryCode(user_id=user.id, created_at=now,
                                    code_hash=generate_password_hash(code, method="pbkdf2:sha256:60000")))
    db.session.flush()
    return [f"{code[:5]}-{code[5:]}" for code in codes]


def enable(user: User, secret: str, code: str, *, now: datetime) -> list[str]:
    """Turn two-factor authentication on with ``secret`` once ``code`` proves the app has it;
    returns the new recovery codes (shown once)."""
    if not user.is_staff:
        raise AccountError("La double authentification concerne les comptes des agents de la Région.")
    code = _normalise(code)
    step = _matching_step(secret, code, now) if _SIX_DIGITS.fullmatch(code) else None
    if step is None:
        raise AccountError("Ce code ne correspond pas : vérifiez l'heure de votre téléphone et tapez "
                           "le code à six chiffres affiché en ce moment par l'application.")
    user.totp_secret, user.totp_enabled_at, user.totp_last_step = secret, now, step
    return _new_recovery_codes(user, now)


def regenerate_recovery_codes(user: User, code: str, *, now: datetime) -> list[str]:
    if not verify(user, code, now=now):
        raise AccountError("Code incorrect : tapez le code à six chiffres de votre application.")
    return _new_recovery_codes(user, now)


def disable(user: User, code: str, *, now: datetime) -> None:
    """Turn it off (instructors and finance only: it is mandatory for admins)."""
    if user.role == "admin":
        raise AccountError("La double authentification est obligatoire pour les administrateurs.")
    if not verify(user, code, now=now):
        raise AccountError("Code incorrect : tapez le code à six chiffres de votre application.")
    user.totp_secret = user.totp_enabled_at = user.totp_last_step = None
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
