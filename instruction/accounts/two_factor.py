"""Two-factor authentication (TOTP, RFC 6238) for staff, with single-use recovery codes.

Instructors and finance may turn it on; admins must (they enrol at their first login). A code is
accepted in the 30-second step before, at and after the server's instant, and never twice: the last
step accepted is kept on the account and moved by a conditional UPDATE, so two requests racing with
the same code let one in. Recovery codes are random, shown once, stored hashed, used once.
Attempts are throttled by the views (Flask-Limiter, ``TOTP_RATE_LIMIT``). Services never commit.

The shared secret is stored encrypted (Fernet: AES-128-CBC and HMAC-SHA256, from ``cryptography``)
with the keys of ``TOTP_ENCRYPTION_KEYS``, newest first, and a key derived from ``SECRET_KEY``
(HKDF-SHA256) last — the only one when none is configured. The first key encrypts, every one
decrypts (``MultiFernet``), so a key is rotated by putting a new one first and running
``instruction two-factor reencrypt``. A secret stored in clear before encryption (base32, which
never looks like a Fernet token) is encrypted at its next use, or by the same command
(docs/decisions.md). A secret no key decrypts raises ``SecretKeyMismatch`` (a French 503; the
recovery codes, hashed, still work).
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime

import pyotp
import segno
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app
from sqlalchemy import delete, or_, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from instruction.accounts.models import RecoveryCode, User
from instruction.accounts.services import AccountError
from instruction.db import rowcount
from instruction.errors import SecretKeyMismatch
from instruction.extensions import db

ISSUER = "Aides numériques BFC"
STEP = 30  # seconds (RFC 6238 default, what every authenticator app uses)
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i
_SIX_DIGITS = re.compile(r"[0-9]{6}")
_IN_CLEAR = re.compile(r"[A-Z2-7]{16,64}=*")  # base32: a secret stored before encryption
_HKDF_INFO = b"instruction: TOTP secrets at rest, v1"


# --- the secret, encrypted at rest ---------------------------------------------------------------


def derived_key(secret_key: str) -> bytes:
    """The Fernet key derived from SECRET_KEY (HKDF-SHA256, a label of its own: it is no other key)."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO)
    return base64.urlsafe_b64encode(hkdf.derive(secret_key.encode()))


def _keys() -> MultiFernet:
    config = current_app.config
    try:
        keys = [Fernet(key) for key in config.get("TOTP_ENCRYPTION_KEYS", ())]
    except (ValueError, TypeError) as error:  # binascii.Error is a ValueError
        raise SecretKeyMismatch("TOTP_ENCRYPTION_KEYS: each key must be 32 url-safe base64-encoded bytes "
                                "(instruction two-factor new-key)") from error
    return MultiFernet([*keys, Fernet(derived_key(config["SECRET_KEY"]))])


def seal(secret: str) -> str:
    """``secret`` encrypted with the first key."""
    return _keys().encrypt(secret.encode()).decode("ascii")


def stored_in_clear(stored: str) -> bool:
    return _IN_CLEAR.fullmatch(stored) is not None


def _unseal(stored: str) -> str:
    try:
        return _keys().decrypt(stored.encode("ascii")).decode()
    except (InvalidToken, UnicodeEncodeError) as error:
        raise SecretKeyMismatch("a TOTP secret cannot be decrypted with TOTP_ENCRYPTION_KEYS nor the key "
                                "derived from SECRET_KEY: a key was removed or changed") from error


def store_secret(user: User, secret: str | None) -> None:
    user.totp_secret = None if secret is None else seal(secret)


def secret_of(user: User) -> str | None:
    """The user's secret in clear (never stored so): one still stored in clear is encrypted now,
    saved with the caller's unit of work."""
    stored = user.totp_secret
    if stored is None:
        return None
    if stored_in_clear(stored):
        user.totp_secret = seal(stored)
        return stored
    return _unseal(stored)


@dataclass
class Reencrypted:
    encrypted: int = 0  # stored in clear until now
    rotated: int = 0  # encrypted again with the first key
    unreadable: list[int] = field(default_factory=list)  # ids of the accounts no key decrypts


def reencrypt_all() -> Reencrypted:
    """Every secret encrypted with the first key (after a key is put first in TOTP_ENCRYPTION_KEYS,
    or for the secrets still in clear); the caller commits."""
    result, keys = Reencrypted(), _keys()
    for user in db.session.scalars(select(User).where(User.totp_secret.is_not(None)).order_by(User.id)):
        stored = user.totp_secret
        assert stored is not None  # selected so
        if stored_in_clear(stored):
            user.totp_secret = keys.encrypt(stored.encode()).decode("ascii")
            result.encrypted += 1
            continue
        try:
            user.totp_secret = keys.rotate(stored.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeEncodeError):
            result.unreadable.append(user.id)
        else:
            result.rotated += 1
    db.session.flush()
    return result


# --- codes ---------------------------------------------------------------------------------------


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
        step = _matching_step(secret_of(user) or "", code, now)
        if step is None:
            return False
        result = db.session.execute(
            update(User).where(User.id == user.id,
                               or_(User.totp_last_step.is_(None), User.totp_last_step < step))
            .values(totp_last_step=step).execution_options(synchronize_session=False))
        db.session.expire(user, ["totp_last_step"])
        return rowcount(result) == 1
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
            return rowcount(result) == 1
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
    store_secret(user, secret)
    user.totp_enabled_at, user.totp_last_step = now, step
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
