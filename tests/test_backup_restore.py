"""Backup and restore as docs/deploy.md says (deploy/backup.sh, deploy/restore.sh): a database
filled through the services, dumped with pg_dump (custom format) and its files archived, restored
into an EMPTY new database and a new folder; the app on the copy reads the same dossiers, amounts
and documents (bytes and SHA-256), and the audit chain verifies."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from instruction.demo import advance
from instruction.documents.services import check_file, store
from instruction.dossiers import services
from instruction.dossiers.models import Document, Dossier
from instruction.extensions import db
from tests import factories
from tests.conftest import make_test_app, prepared_app, recreate_database, sibling_database_url

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MAX = 10 * 1024 * 1024
# The files the applicants send, made here: their SHA-256 is computed by the test from these bytes.
INVOICE = factories.pdf_bytes("Facture 2031-044 : 1 200,00 EUR HT")
QUOTE = factories.pdf_bytes("Devis du serveur de sauvegarde")
PHOTO = factories.png_bytes(3, 2)


def applied(aid: int, collectivite, lines: list[tuple[str, str, str, bytes]], state: str,
            grant_amount: Decimal | None = None) -> Dossier:
    """A dossier created, filled (with real stored files) and brought to ``state`` by the services."""
    author = factories.applicant_of(collectivite)
    dossier = services.create_draft(campaign=factories.campaign(), aid_number=aid, collectivite=collectivite,
                                    author=author, title=f"Projet de sauvegarde {aid}", now=factories.NOW)
    for category, label, amount, data in lines:
        line = services.add_line(dossier, category=category, label=label, amount_ht=Decimal(amount),
                                 **({"pack": 1} if aid == 1 else {}))
        name = "photo.png" if data.startswith(b"\x89PNG") else f"{label.lower().replace(' ', '-')}.pdf"
        store(dossier, check_file(name, data, MAX), line=line, uploader=author, now=factories.NOW)
    db.session.flush()
    advance(dossier, state, applicant=author, instructor=factories.staff("instructor"),
            finance=factories.staff("finance"), now=factories.NOW, grant_amount=grant_amount, reason="Motif")
    return dossier


def run(script: str, *args: str, database_url: str, upload_folder: Path):
    env = {**os.environ, "DATABASE_URL": database_url, "UPLOAD_FOLDER": str(upload_folder)}
    return subprocess.run([str(ROOT / "deploy" / script), *args], env=env, capture_output=True,
                          text=True, timeout=300)


def instruction(*args: str, database_url: str, tmp: Path):
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "k" * 40,
           "INSTANCE_PATH": str(tmp / "instance"), "INSTRUCTION_ENV": ""}
    return subprocess.run([str(BIN / "instruction"), *args], env=env, capture_output=True, text=True,
                          timeout=300)


def snapshot() -> dict:
    """What the app reads: each dossier's reference, state and amounts, its lines and documents."""
    found = {}
    for dossier in db.session.scalars(select(Dossier).order_by(Dossier.id)):
        found[dossier.id] = {
            "reference": dossier.reference, "state": dossier.state,
            "amounts": (dossier.requested_amount, dossier.computed_amount, dossier.granted_amount,
                        dossier.paid_amount),
            "lines": sorted((line.label, line.amount_ht) for line in dossier.lines),
            "documents": sorted((doc.original_name, doc.size_bytes, doc.sha256) for doc in dossier.documents),
        }
    return found


@pytest.fixture
def source(tmp_path):
    app = prepared_app(sibling_database_url("backup_src"), tmp_path / "source")
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def test_a_backup_restores_into_an_empty_database(source, tmp_path):
    commune, epci = factories.commune("21001"), factories.epci("200000925")
    applied(1, commune, [("equipement", "Ordinateur", "1200.00", INVOICE)], "received")
    granted = applied(2, epci, [("equipement", "Serveur de sauvegarde", "10000.00", QUOTE),
                                ("equipement", "Onduleur", "850.50", PHOTO)], "granted",
                      grant_amount=Decimal("4321.09"))
    applied(1, factories.commune("21002"), [("equipement", "Tablette", "399.99", INVOICE)], "draft")
    db.session.commit()
    granted_id = granted.id
    before = snapshot()
    assert len(before) == 3
    db.session.remove()

    # Backup, as docs/deploy.md says.
    backups = tmp_path / "backups"
    done = run("backup.sh", str(backups), database_url=sibling_database_url("backup_src"),
               upload_folder=Path(source.config["UPLOAD_FOLDER"]))
    assert done.returncode == 0, done.stderr
    backup = Path(done.stdout.strip().splitlines()[-1])
    assert sorted(p.name for p in backup.iterdir()) == ["SHA256SUMS", "database.dump", "uploads.tar.gz"]
    assert (backups / "latest").resolve() == backup.resolve()
    assert backup.joinpath("database.dump").read_bytes()[:5] == b"PGDMP"  # pg_dump's custom format

    # Restore into an empty new database and a new folder.
    target_url = sibling_database_url("backup_dst")
    recreate_database(target_url)
    uploads = tmp_path / "restored" / "uploads"
    done = run("restore.sh", str(backups / "latest"), database_url=target_url, upload_folder=uploads)
    assert done.returncode == 0, done.stderr

    restored = make_test_app(target_url, tmp_path / "restored")
    with restored.app_context():
        try:
            after = snapshot()
            assert after == before
            copy = db.session.get(Dossier, granted_id)
            assert copy.state == "granted" and copy.granted_amount == Decimal("4321.09")
            assert sorted(line.amount_ht for line in copy.lines) == [Decimal("850.50"), Decimal("10000.00")]
            documents = db.session.scalars(select(Document).order_by(Document.id)).all()
            assert len(documents) == 4
            expected = {"ordinateur.pdf": INVOICE, "serveur-de-sauvegarde.pdf": QUOTE, "photo.png": PHOTO,
                        "tablette.pdf": INVOICE}
            for document in documents:
                data = (uploads / document.storage_key).read_bytes()
                assert data == expected[document.original_name]
                assert hashlib.sha256(data).hexdigest() == document.sha256
                assert document.sha256 == hashlib.sha256(expected[document.original_name]).hexdigest()
            # Through the app: an instructor downloads the restored file.
            instructor = factories.staff("instructor")
            client = restored.test_client()
            factories.log_in(client, instructor)
            quote = next(d for d in documents if d.original_name == "serveur-de-sauvegarde.pdf")
            response = client.get(f"/documents/{quote.id}/telecharger")
            assert response.status_code == 200 and response.data == QUOTE
        finally:
            db.session.remove()
            db.engine.dispose()

    verified = instruction("audit", "verify", database_url=target_url, tmp=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    current = instruction("db", "current", database_url=target_url, tmp=tmp_path)
    assert current.returncode == 0 and "(head)" in current.stdout, current.stdout + current.stderr

    # Restoring again refuses: the database is no longer empty (nor the folder).
    again = run("restore.sh", str(backup), database_url=target_url, upload_folder=tmp_path / "other")
    assert again.returncode == 1 and "restore into an empty database" in again.stderr
    recreate_database(target_url)
    again = run("restore.sh", str(backup), database_url=target_url, upload_folder=uploads)
    assert again.returncode == 1 and "is not empty" in again.stderr

    # A damaged backup is refused before anything is written.
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for part in backup.iterdir():
        damaged.joinpath(part.name).write_bytes(part.read_bytes())
    dump = damaged / "database.dump"
    dump.write_bytes(dump.read_bytes()[:-10] + b"0123456789")
    again = run("restore.sh", str(damaged), database_url=target_url, upload_folder=tmp_path / "empty")
    assert again.returncode == 1 and "damaged" in again.stderr
    engine = sa.create_engine(target_url)
    with engine.connect() as connection:
        assert connection.scalar(sa.text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")) == 0
    engine.dispose()
