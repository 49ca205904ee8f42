"""Configuration from environment variables, with an embedded default that needs no server."""

from __future__ import annotations

import math
import os
import secrets
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from instruction.rules.parameters import PARIS


def resource_root() -> Path:
    """Where ``templates/``, ``static/`` and ``migrations/`` are: ``INSTRUCTION_HOME``, else beside the
    package (a source checkout or an editable install). An installed wheel (the Docker image) has
    the code in site-packages and these folders in ``INSTRUCTION_HOME`` (/app)."""
    if home := os.environ.get("INSTRUCTION_HOME"):
        return Path(home)
    return Path(__file__).resolve().parent.parent


def is_production() -> bool:
    """``INSTRUCTION_ENV=production`` (docker-compose.yml sets it): the strict checks of a real
    deployment, e.g. no SECRET_KEY generated on the fly and no weak one."""
    return os.environ.get("INSTRUCTION_ENV", "").strip().lower() == "production"


class WeakSecretKey(RuntimeError):
    """Raised at start-up in production when SECRET_KEY is missing or guessable."""


# Placeholders found in examples and tutorials: a key containing one of them was typed, not drawn.
# (Words of six letters or more: a drawn key does not contain one by chance; "dev" alone is too short.)
KNOWN_PLACEHOLDERS = ("change", "secret", "example", "password", "default", "replace")
SECRET_KEY_MIN_LENGTH = 32
SECRET_KEY_MIN_BITS = 128
GENERATE_HINT = "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"


def secret_key_weakness(key: str | None) -> str | None:
    """Why ``key`` is not fit for production, in French for the operator; None when it is fit.

    Entropy is estimated from the key's own character frequencies (Shannon), times its length: a
    drawn key of 32 URL-safe characters has about 150 bits, "aaaa…" or "abab…" a few."""
    if not key:
        return "SECRET_KEY n'est pas définie"
    if len(key) < SECRET_KEY_MIN_LENGTH:
        return f"SECRET_KEY est trop courte ({len(key)} caractères, {SECRET_KEY_MIN_LENGTH} au moins)"
    lowered = key.lower()
    if any(word in lowered for word in KNOWN_PLACEHOLDERS):
        return "SECRET_KEY ressemble à une valeur d'exemple (« change-me », « secret », « dev »…)"
    counts = Counter(key)
    bits = sum(n * math.log2(len(key) / n) for n in counts.values())
    if bits < SECRET_KEY_MIN_BITS:
        return f"SECRET_KEY a trop peu d'entropie (environ {bits:.0f} bits, {SECRET_KEY_MIN_BITS} au moins)"
    return None


def check_production_secret(key: str | None) -> None:
    if reason := secret_key_weakness(key):
        raise WeakSecretKey(
            f"Démarrage refusé (INSTRUCTION_ENV=production) : {reason}. Tirez une clé au hasard, "
            f"par exemple avec `{GENERATE_HINT}`, et donnez-la dans la variable SECRET_KEY "
            "(fichier .env, voir docs/deploy.md).")


def _secret_key(instance: Path) -> str:
    """The SECRET_KEY variable, or a key generated once and kept under instance/ (never a fixed default)."""
    if key := os.environ.get("SECRET_KEY"):
        return key
    path = instance / "secret_key"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip()


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _service_identity() -> dict[str, str]:
    """Defaults of the service's identity (instruction/settings), until an admin saves its own."""
    defaults = {
        "authority_name": "Région Bourgogne-Franche-Comté",
        "service_name": "Direction du numérique — Service des aides aux collectivités",
        "postal_address": "4 square Castan\nCS 51857\n25031 Besançon Cedex",
        "email": "aides-numeriques@bourgognefranchecomte.fr",
        "telephone": "03 81 61 61 61",
        "signatory_name": "Marie-Guite Dufay",
        "signatory_title": "Présidente du Conseil régional de Bourgogne-Franche-Comté",
        "tribunal_name": "Tribunal administratif de Besançon",
        "tribunal_address": "30 rue Charles Nodier\n25044 Besançon Cedex 3",
        "telerecours_url": "https://citoyens.telerecours.fr",
    }
    return {name: os.environ.get(f"SERVICE_{name.upper()}", value).replace("\\n", "\n")
            for name, value in defaults.items()}


def load_config(instance: Path, overrides: dict) -> dict:
    instance.mkdir(parents=True, exist_ok=True)
    production = is_production()
    if production:  # never a key generated on the fly: each web process would draw its own
        check_production_secret(overrides.get("SECRET_KEY") or os.environ.get("SECRET_KEY"))
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{instance / 'instruction.db'}"
    config: dict[str, Any] = {
        "SECRET_KEY": overrides.get("SECRET_KEY") or _secret_key(instance),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        # Fernet keys that encrypt the TOTP secrets, newest first (the first encrypts, every one
        # decrypts); empty: one key derived from SECRET_KEY (docs/decisions.md, two-factor secrets).
        "TOTP_ENCRYPTION_KEYS": tuple(key.strip() for key in os.environ.get("TOTP_ENCRYPTION_KEYS", "").split(",")
                                      if key.strip()),
        "UPLOAD_FOLDER": os.environ.get("UPLOAD_FOLDER") or str(instance / "uploads"),
        "MAX_UPLOAD_BYTES": int(os.environ.get("MAX_UPLOAD_BYTES", 10 * 1024 * 1024)),
        "SMTP_HOST": os.environ.get("SMTP_HOST", "127.0.0.1"),
        # Without a relay (no SMTP_HOST), e-mails are written as .eml files under instance/mail/.
        "MAIL_FOLDER": os.environ.get("MAIL_FOLDER")
        or ("" if "SMTP_HOST" in os.environ else str(instance / "mail")),
        "SMTP_PORT": int(os.environ.get("SMTP_PORT", 8025)),
        "SMTP_USER": os.environ.get("SMTP_USER", ""),
        "SMTP_PASSWORD": os.environ.get("SMTP_PASSWORD", ""),
        "SMTP_STARTTLS": _bool("SMTP_STARTTLS", False),
        "MAIL_FROM": os.environ.get("MAIL_FROM", "aides-numeriques@bourgognefranchecomte.fr"),
        "BASE_URL": os.environ.get("BASE_URL") or "http://127.0.0.1:5000",
        "SMTP_TIMEOUT": float(os.environ.get("SMTP_TIMEOUT", 30)),
        # Notifications and the worker (docs/worker.md).
        "NOTIFICATION_RATE": os.environ.get("NOTIFICATION_RATE", "60/m"),
        "NOTIFICATION_MAX_ATTEMPTS": int(os.environ.get("NOTIFICATION_MAX_ATTEMPTS", 8)),
        "NOTIFICATION_RETRY_DELAY": float(os.environ.get("NOTIFICATION_RETRY_DELAY", 60)),
        "NOTIFICATION_REDISPATCH_AFTER": int(os.environ.get("NOTIFICATION_REDISPATCH_AFTER", 3600)),
        # Redis gives a task taken by a worker that died (never acknowledged) to another worker after
        # this many seconds: above the longest a live worker holds one (docs/worker.md).
        "BROKER_VISIBILITY_TIMEOUT": int(os.environ.get("BROKER_VISIBILITY_TIMEOUT", 240)),
        "REMINDER_DAYS": tuple(int(d) for d in os.environ.get("REMINDER_DAYS", "30,7,1").split(",")
                               if d.strip()),
        "DOCUMENTS_REMINDER_DAYS": int(os.environ.get("DOCUMENTS_REMINDER_DAYS", 15)),
        "IMPLICIT_DECISION_ALERT_DAYS": int(os.environ.get("IMPLICIT_DECISION_ALERT_DAYS", 15)),

        # Files of dossiers closed longer than this are deleted by the nightly purge (ten years:
        # the keeping of accounting documents).
        "DOCUMENT_RETENTION_DAYS": int(os.environ.get("DOCUMENT_RETENTION_DAYS", 3650)),
        # Exports of a queue view: above this many rows the worker builds the file (the page shows
        # its progress); a built file is kept this many hours, under EXPORT_FOLDER (shared by the
        # web app and the worker, like UPLOAD_FOLDER).
        "EXPORT_INLINE_MAX_ROWS": int(os.environ.get("EXPORT_INLINE_MAX_ROWS", 5000)),
        "EXPORT_RETENTION_HOURS": int(os.environ.get("EXPORT_RETENTION_HOURS", 48)),
        "EXPORT_FOLDER": os.environ.get("EXPORT_FOLDER") or str(instance / "exports"),
        # The date of the last accessibility audit, shown on the déclaration d'accessibilité.
        "ACCESSIBILITY_AUDIT_DATE": os.environ.get("ACCESSIBILITY_AUDIT_DATE", "2026-12-02"),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _bool("SESSION_COOKIE_SECURE", False),
        # Number of reverse proxies in front of the app whose X-Forwarded-* headers are trusted
        # (client IP for the login rate limit, scheme and host for links): 0 when exposed directly.
        "PROXY_COUNT": int(os.environ.get("PROXY_COUNT", 0)),
        # The remember cookie is as protected as the session's, and lasts 30 days (not a year).
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": _bool("SESSION_COOKIE_SECURE", False),
        "REMEMBER_COOKIE_DURATION": timedelta(days=int(os.environ.get("REMEMBER_COOKIE_DAYS", 30))),
        "BOOTSTRAP_SERVE_LOCAL": True,
        "WTF_CSRF_TIME_LIMIT": None,
        "TIMEZONE": PARIS.key,
        "SERVICE_IDENTITY": _service_identity(),
        "PRODUCTION": production,
        # Log lines as JSON objects (one a line, with the request id): the default in production.
        "LOG_FORMAT": os.environ.get("LOG_FORMAT") or ("json" if production else "text"),
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO").upper(),
    }
    config.update(overrides)
    config.setdefault("REMEMBER_COOKIE_SECURE", config["SESSION_COOKIE_SECURE"])
    if "SESSION_COOKIE_SECURE" in overrides and "REMEMBER_COOKIE_SECURE" not in overrides:
        config["REMEMBER_COOKIE_SECURE"] = overrides["SESSION_COOKIE_SECURE"]
    # Queue a delivery task after each commit that wrote outbox rows; off by default in tests,
    # whose rows live in a transaction that the worker cannot see.
    config.setdefault("NOTIFICATION_DISPATCH_ON_COMMIT",
                      _bool("NOTIFICATION_DISPATCH_ON_COMMIT", not config.get("TESTING", False)))
    if config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"connect_args": {"timeout": 30}})
    else:
        config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"pool_pre_ping": True})
    return config
