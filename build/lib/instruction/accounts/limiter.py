"""Rate limiting of the login and of the account e-mails (Flask-Limiter).

Failed logins are counted per IP address and e-mail (``LOGIN_RATE_LIMIT``) and, more loosely, per
IP address alone (``LOGIN_IP_RATE_LIMIT``); only failures count, so a user who types the right
password is never slowed down. Registrations count only when the form was valid (a mistake corrected
does not lock a shared office out). Storage: ``RATELIMIT_STORAGE_URI``; by default the Redis of
``REDIS_URL`` when one is configured (one count for every web process), else ``memory://``.
"""

from __future__ import annotations

import os
import time

from flask import Flask, current_app, request
from flask_limiter import Limiter

from instruction.accounts.services import normalise_email

DEFAULTS = {
    "LOGIN_RATE_LIMIT": "10 per 15 minutes",
    "LOGIN_IP_RATE_LIMIT": "50 per 15 minutes",
    "ACCOUNT_EMAIL_RATE_LIMIT": "5 per 15 minutes",
    "REGISTRATION_RATE_LIMIT": "10 per hour",
    "TOTP_RATE_LIMIT": "5 per 15 minutes",
}


def client_ip() -> str:
    return request.remote_addr or "unknown"


def ip_and_email() -> str:
    """Key of a login attempt: the client's IP address and the e-mail typed."""
    return f"{client_ip()}|{normalise_email(request.form.get('email', ''))}"


def _config(name: str):
    return lambda: current_app.config.get(name) or DEFAULTS[name]


def login_failed(response) -> bool:
    return response.status_code == 401


def form_accepted(response) -> bool:
    """A registration that passed validation redirects; one that did not is shown again (400)."""
    return response.status_code == 302


def wait_message() -> str:
    """How long the current limit still holds, in French (« 1 minute », « 47 minutes », « 1 h 05 »)."""
    current = limiter.current_limit
    seconds = max(0, int(current.reset_at - time.time())) if current is not None else 15 * 60
    minutes = max(1, -(-seconds // 60))
    if minutes < 60:
        return f"{minutes} minute{'s' if minutes > 1 else ''}"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest:02d}" if rest else f"{hours} heure{'s' if hours > 1 else ''}"


limiter = Limiter(key_func=client_ip, key_prefix="instruction")

login_limit = limiter.limit(_config("LOGIN_RATE_LIMIT"), key_func=ip_and_email, methods=["POST"],
                            deduct_when=login_failed)
login_ip_limit = limiter.limit(_config("LOGIN_IP_RATE_LIMIT"), key_func=client_ip, methods=["POST"],
                               deduct_when=login_failed)
email_limit = limiter.limit(_config("ACCOUNT_EMAIL_RATE_LIMIT"), key_func=ip_and_email,
                            methods=["POST"])
# Each registration e-mails the admins and the agents of the collectivité: a script must not
# be able to flood them.
registration_limit = limiter.limit(_config("REGISTRATION_RATE_LIMIT"), key_func=client_ip,
                                   methods=["POST"], deduct_when=form_accepted)


def second_factor_key() -> str:
    """Wrong second-factor codes are counted per account (the one being signed in, or signed in)."""
    from flask import session
    from flask_login import current_user

    pending = session.get("second_factor")
    if isinstance(pending, dict):
        return f"totp|{str(pending.get('user', '')).partition(':')[0]}"
    if current_user.is_authenticated:
        return f"totp|{current_user.id}"
    return f"totp|ip|{client_ip()}"


def code_refused(response) -> bool:
    return response.status_code in (400, 401)


second_factor_limit = limiter.limit(_config("TOTP_RATE_LIMIT"), key_func=second_factor_key,
                                    methods=["POST"], deduct_when=code_refused)


def init_limiter(app: Flask) -> None:
    for name, value in DEFAULTS.items():
        app.config.setdefault(name, os.environ.get(name) or value)
    app.config.setdefault("RATELIMIT_STORAGE_URI", os.environ.get("RATELIMIT_STORAGE_URI")
                          or app.config.get("REDIS_URL") or "memory://")
    # If the storage (Redis) is down, count in memory and log: a login never fails for that.
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    limiter.init_app(app)
