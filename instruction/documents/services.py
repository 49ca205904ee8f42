"""Uploaded invoices and quotes: hostile until proven otherwise.

A file is accepted only if its content is a PDF, a JPEG or a PNG (magic bytes, via ``filetype``),
its name's extension matches that content, it is not empty and not larger than
``MAX_UPLOAD_BYTES``. It is stored under ``UPLOAD_FOLDER`` (outside the web root) with a random
key, written atomically (``instruction.storage.files``); the original name is kept, sanitised,
only as metadata. The database row and the file are written in the same transaction: the files
stored in a transaction that rolls back (a refusal, a failed commit) are removed, so there is
never a row without its file nor a file nobody knows about.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

import filetype

from instruction.dossiers.models import Document, Dossier, ExpenseLine
from instruction.extensions import db
from instruction.storage import files

# Sniffed content type -> (label for people, accepted extensions).
ALLOWED = {
    "application/pdf": ("PDF", (".pdf",)),
    "image/jpeg": ("JPEG", (".jpg", ".jpeg")),
    "image/png": ("PNG", (".png",)),
}
MAX_NAME_LENGTH = 150
_KNOWN_OTHERS = {"application/zip": "une archive ZIP", "application/x-msdownload": "un programme",
                 "application/x-executable": "un programme", "image/gif": "une image GIF",
                 "image/webp": "une image WebP", "image/heic": "une image HEIC (iPhone)",
                 "application/msword": "un document Word",
                 "application/vnd.openxmlformats-officedocument.wordprocessingml.document":
                     "un document Word",
                 "application/vnd.oasis.opendocument.text": "un document OpenDocument"}


class UploadRejected(ValueError):
    """A French message that names the file and says why it was refused."""


@dataclass(frozen=True)
class CheckedFile:
    name: str
    data: bytes
    content_type: str
    sha256: str


def megabytes(size: int) -> str:
    value = size / (1024 * 1024)
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{text.replace('.', ',')} Mo"


def display_name(raw: str | None) -> str:
    """A safe rendering of a raw client file name for messages: no control characters."""
    text = "".join("?" if unicodedata.category(ch) in ("Cc", "Cf") else ch for ch in raw or "")
    return text[:MAX_NAME_LENGTH] or "(sans nom)"


def sanitise_name(raw: str | None) -> str:
    """The file name kept as metadata: no path, no control or format characters, trimmed spaces,
    at most MAX_NAME_LENGTH characters (the extension is kept)."""
    text = unicodedata.normalize("NFC", raw or "")
    text = re.split(r"[/\\]", text)[-1]
    text = re.sub(r"\s+", " ", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp"))
    text = text.strip().lstrip(".").strip()
    if len(text) > MAX_NAME_LENGTH:
        stem, dot, ext = text.rpartition(".")
        if dot and len(ext) <= 10:
            text = stem[: MAX_NAME_LENGTH - len(ext) - 1].rstrip() + "." + ext
        else:
            text = text[:MAX_NAME_LENGTH]
    return text


def check_file(raw_name: str | None, data: bytes, max_bytes: int) -> CheckedFile:
    """Accept ``data`` or raise UploadRejected with the reason, in French, naming the file."""
    shown = display_name(raw_name)
    if any(unicodedata.category(ch) == "Cc" for ch in raw_name or "") or re.search(r"[/\\]", raw_name or ""):
        raise UploadRejected(
            f"« {shown} » refusé : le nom du fichier contient un chemin ou des caractères de contrôle. "
            f"Renommez le fichier simplement (par exemple « facture.pdf ») puis envoyez-le à nouveau.")
    name = sanitise_name(raw_name)
    if not name:
        raise UploadRejected("Un fichier sans nom a été refusé : renommez-le (par exemple « facture.pdf »).")
    if not data:
        raise UploadRejected(f"« {shown} » refusé : le fichier est vide.")
    if len(data) > max_bytes:
        raise UploadRejected(f"« {shown} » refusé : il fait plus de {megabytes(max_bytes)}, la taille "
                             f"maximale d'un fichier. Réduisez-le (par exemple en le numérisant en "
                             f"noir et blanc ou à 150 dpi) puis envoyez-le à nouveau.")
    kind = filetype.guess(data)
    content_type = kind.mime if kind else None
    if content_type not in ALLOWED:
        what = _KNOWN_OTHERS.get(content_type or "", "")
        what = f"ce fichier est {what} ; " if what else "son contenu n'est ni un PDF, ni une image JPEG ou PNG ; "
        raise UploadRejected(f"« {shown} » refusé : {what}seuls les fichiers PDF, JPEG et PNG sont acceptés.")
    label, extensions = ALLOWED[content_type]
    extension = os.path.splitext(name)[1].lower()
    if extension not in extensions:
        shown_ext = f"l'extension « {extension} »" if extension else "l'absence d'extension"
        raise UploadRejected(f"« {shown} » refusé : {shown_ext} ne correspond pas à son contenu ({label}). "
                             f"Renommez-le en « {os.path.splitext(name)[0] or 'document'}{extensions[0]} » "
                             f"s'il s'agit bien de ce document.")
    if content_type == "application/pdf" and not data.startswith(b"%PDF-"):
        raise UploadRejected(f"« {shown} » refusé : ce n'est pas un PDF valide (en-tête %PDF- absent).")
    return CheckedFile(name=name, data=data, content_type=content_type,
                       sha256=hashlib.sha256(data).hexdigest())


def read_upload(file_storage, max_bytes: int) -> bytes:
    """At most ``max_bytes + 1`` bytes of an upload: enough to tell it is too large."""
    return file_storage.stream.read(max_bytes + 1)


# --- storage ---------------------------------------------------------------------------------------


def store(dossier: Dossier, checked: CheckedFile, *, line: ExpenseLine | None, uploader,
          now: datetime) -> Document:
    """Write the file and add its row (flushed, not committed); the file goes if the transaction
    rolls back."""
    key = files.write_bytes(checked.data)
    files.remove_on_rollback(key)
    document = Document(dossier=dossier, line=line, original_name=checked.name, storage_key=key,
                        size_bytes=len(checked.data), content_type=checked.content_type,
                        sha256=checked.sha256, uploaded_by=uploader, uploaded_at=now)
    db.session.add(document)
    try:
        db.session.flush()
    except Exception:
        files.remove_files([key])
        raise
    return document
