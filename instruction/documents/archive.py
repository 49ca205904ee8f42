"""The documents of a dossier as one zip: invoices and quotes, the files joined to messages, the
acknowledgment and the decision letters, with a manifest.

The zip is streamed as it is written (``zipfile`` on a write-only stream: data descriptors, no
seek), one stored file read in chunks at a time, so memory stays flat whatever the sizes. The
manifest (``manifeste.csv``, French spreadsheet format) comes last: it lists every file with its
expense line and the SHA-256 of the bytes actually written, and the documents whose file was
deleted at the end of the retention period (``documents.retention``), or is missing, with the
SHA-256 recorded when they were received.
"""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from instruction.acts.models import LegalAct
from instruction.documents.services import sanitise_name
from instruction.dossiers.models import Document, Dossier
from instruction.extensions import db
from instruction.rules.formatting import format_euros
from instruction.rules.parameters import paris_date
from instruction.storage.files import path_for

CHUNK = 64 * 1024
MANIFEST = "manifeste.csv"
MANIFEST_HEADERS = ("Fichier", "Nature", "Ligne de dépense", "Montant HT de la ligne", "Nom d'origine",
                    "Date", "Taille (octets)", "SHA-256", "État")
PRESENT = "Présent"
# The folders of the zip, by kind of file.
EXPENSES, MESSAGES, OTHERS, ACTS = "pieces", "echanges", "autres", "actes"


@dataclass(frozen=True)
class Entry:
    """One line of the manifest; ``path`` is the stored file to copy (None when it is not there)."""

    name: str  # in the zip (or the name it would have had)
    nature: str
    line: str
    line_amount: str
    original_name: str
    on: date | None
    size: int | None
    sha256: str | None  # recorded when the file was stored
    path: Path | None
    state: str


def _date(instant: datetime | None) -> date | None:
    return paris_date(instant) if instant is not None else None


def _document_entry(index: int, document: Document) -> Entry:
    if document.line is not None:
        folder, nature = EXPENSES, "Facture ou devis"
        line = f"{document.line.category_label} · {document.line.label}"
        amount = format_euros(document.line.amount_ht).replace("\u00a0", " ")
    elif document.message_id is not None:
        folder, nature, line, amount = MESSAGES, "Pièce jointe à un message", "", ""
    else:
        folder, nature, line, amount = OTHERS, "Pièce du dossier", "", ""
    name = f"{folder}/{index:03d} - {sanitise_name(document.original_name) or 'document'}"
    path, state = None, PRESENT
    if document.purged_at is not None:
        state = (f"Supprimé le {paris_date(document.purged_at).strftime('%d/%m/%Y')} "
                 "à l'issue de la durée de conservation (dossier clos)")
    else:
        try:
            path = path_for(document.storage_key)
        except ValueError:
            path = None
        if path is None or not path.is_file():
            path, state = None, "Fichier introuvable dans le stockage"
    return Entry(name=name, nature=nature, line=line, line_amount=amount,
                 original_name=document.original_name, on=_date(document.uploaded_at),
                 size=document.size_bytes, sha256=document.sha256, path=path, state=state)


def _act_entry(act: LegalAct) -> Entry:
    path, state = None, PRESENT
    if act.storage_key is None:
        state = "Pas encore mis en forme"
    else:
        path = path_for(act.storage_key)
        if not path.is_file():
            path, state = None, "Fichier introuvable dans le stockage"
    return Entry(name=f"{ACTS}/{act.file_name}", nature=act.title, line="", line_amount="",
                 original_name="", on=_date(act.issued_at), size=act.size_bytes, sha256=act.sha256,
                 path=path, state=state)


def entries(dossier: Dossier) -> list[Entry]:
    """Every file of the dossier, in the order of the zip: expense lines' documents (line by
    line), the files of the thread, others, then the legal acts."""
    documents = db.session.scalars(
        select(Document).where(Document.dossier_id == dossier.id)
        .options(selectinload(Document.line)).order_by(Document.id)).all()

    def order(document: Document) -> tuple:
        if document.line is not None:
            return (0, document.line.id, document.id)
        return (1 if document.message_id is not None else 2, 0, document.id)

    found = [_document_entry(index, d) for index, d in enumerate(sorted(documents, key=order), start=1)]
    acts = db.session.scalars(select(LegalAct).where(LegalAct.dossier_id == dossier.id).order_by(LegalAct.id))
    return found + [_act_entry(act) for act in acts]


def archive_name(dossier: Dossier) -> str:
    return f"{dossier.reference or f'dossier-{dossier.id}'}-pieces.zip"


class _Pipe(io.RawIOBase):
    """A write-only stream whose bytes are taken by the generator that streams the zip."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        self.chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        return data


def _manifest(rows: list[tuple[Entry, str | None, str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(MANIFEST_HEADERS)
    for entry, sha256, state in rows:
        writer.writerow([entry.name, entry.nature, entry.line, entry.line_amount, entry.original_name,
                         entry.on.strftime("%d/%m/%Y") if entry.on else "",
                         "" if entry.size is None else entry.size, sha256 or "", state])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def stream_zip(items: list[Entry], *, now: datetime) -> Iterator[bytes]:
    """The zip, chunk by chunk. Each file's SHA-256 is computed on the bytes written; if it differs
    from the one recorded, the manifest says so."""
    pipe = _Pipe()
    stamp = paris_date(now)
    timestamp = (stamp.year, stamp.month, stamp.day, 0, 0, 0)
    manifest: list[tuple[Entry, str | None, str]] = []
    with zipfile.ZipFile(pipe, mode="w", compression=zipfile.ZIP_DEFLATED) as archive:
        for entry in items:
            if entry.path is None:
                manifest.append((entry, entry.sha256, entry.state))
                continue
            info = zipfile.ZipInfo(entry.name, date_time=timestamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            digest = hashlib.sha256()
            with entry.path.open("rb") as source, archive.open(info, mode="w") as target:
                while chunk := source.read(CHUNK):
                    digest.update(chunk)
                    target.write(chunk)
                    yield pipe.take()
            actual = digest.hexdigest()
            state = entry.state if entry.sha256 in (None, actual) else \
                f"Empreinte différente de celle enregistrée ({entry.sha256})"
            manifest.append((entry, actual, state))
            yield pipe.take()
        info = zipfile.ZipInfo(MANIFEST, date_time=timestamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, _manifest(manifest))
    yield pipe.take()


def unrendered_acts(dossier: Dossier) -> list[LegalAct]:
    """The dossier's legal acts whose PDF is not rendered yet (the worker renders them within
    minutes; the zip renders the late ones first, as their download does)."""
    return list(db.session.scalars(select(LegalAct).where(LegalAct.dossier_id == dossier.id,
                                                          LegalAct.storage_key.is_(None))
                                   .order_by(LegalAct.id)))
