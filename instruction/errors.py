"""What a service raises when it refuses: a French message for the person who asked, and the HTTP
status a view answers with."""

from __future__ import annotations


class StorageUnavailable(Exception):
    """The upload store cannot be written or read (full, read-only, unmounted): a 503, not a 500."""


class SecretKeyMismatch(Exception):
    """A TOTP secret cannot be decrypted with the configured keys (a key removed from, or wrong in,
    TOTP_ENCRYPTION_KEYS, or SECRET_KEY changed): a 503 that says so, not a 500."""


class Refusal(Exception):
    status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
