"""Stored files: written atomically under ``UPLOAD_FOLDER`` (outside the web root) with a random
key, and removed again if the transaction that wrote them rolls back, so that there is never a
file nobody knows about. The rows that name them (documents, legal acts) live in their packages.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from instruction.errors import StorageUnavailable
from instruction.extensions import db

log = logging.getLogger(__name__)

_KEY = re.compile(r"[0-9a-f]{16,64}")

# Every download (an attachment, a zip) runs under this CSP: it may load nothing and run nothing.
DOWNLOAD_CSP = "default-src 'none'; sandbox; frame-ancestors 'none'"


def upload_folder() -> Path:
    return Path(current_app.config["UPLOAD_FOLDER"])


def path_for(storage_key: str) -> Path:
    if not _KEY.fullmatch(storage_key or ""):
        raise ValueError(f"not a storage key: {storage_key!r}")
    return upload_folder() / storage_key


def write_bytes(data: bytes) -> str:
    """Store ``data`` under a new random key, atomically (a temporary file, fsync, rename);
    returns the key. StorageUnavailable if the folder cannot be written."""
    folder = upload_folder()
    key = secrets.token_hex(32)
    final = folder / key
    temporary = folder / f".{key}.part"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as error:
        raise StorageUnavailable(f"upload folder {folder}: {error}") from error
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, final)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise StorageUnavailable(f"upload folder {folder}: {error}") from error
        raise
    return key


def remove_files(keys: Iterable[str]) -> None:
    """Delete stored files (after their rows are gone, or when their rows were never committed)."""
    for key in keys:
        try:
            path_for(key).unlink(missing_ok=True)
        except (OSError, ValueError):
            log.exception("could not remove the stored file %s", key)


WRITTEN_FILES = "storage.written_files"  # key in Session.info: files of the open transaction


def remove_on_rollback(key: str) -> None:
    """The file ``key`` belongs to the open transaction: it is removed if that transaction rolls
    back (its row never existed), kept once it commits."""
    db.session.info.setdefault(WRITTEN_FILES, []).append(key)


@event.listens_for(Session, "after_commit")
def _keep_written_files(session: Session) -> None:
    if not session.in_nested_transaction():  # a released SAVEPOINT is not the commit
        session.info.pop(WRITTEN_FILES, None)


@event.listens_for(Session, "after_soft_rollback")
def _remove_written_files(session: Session, previous_transaction: SessionTransaction) -> None:
    """The transaction that stored them rolled back (not a savepoint inside it): no row names
    these files any more."""
    if previous_transaction.parent is None:
        remove_files(session.info.pop(WRITTEN_FILES, []))


def content_disposition(kind: str, name: str) -> str:
    """``attachment`` or ``inline`` with an ASCII fallback and the UTF-8 name (RFC 6266 / 5987)."""
    fallback = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    fallback = re.sub(r'[^A-Za-z0-9._ ()-]', "_", fallback).strip() or "document"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
