"""The upload folder becomes unwritable under a running server (gunicorn): an upload is a French
503 and saves nothing (no document row, no stray file); once the folder is writable again, the same
server process accepts the upload. The folder is made immutable (``chattr +i``, which binds root
too); where the file system does not support it, a file takes the folder's place."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from instruction.dossiers.models import Document
from instruction.extensions import db
from tests import factories
from tests.faults.conftest import fault_app
from tests.faults.services import AppServer, app_environment, fetch, logged_in_opener


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    chunks = []
    for name, value in fields.items():
        chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, content) in files.items():
        chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                      'Content-Type: application/pdf\r\n\r\n'.encode() + content + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


class Unwritable:
    """Makes ``folder`` refuse new files, then gives it back."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.moved: Path | None = None

    def __enter__(self):
        immutable = subprocess.run(["chattr", "+i", str(self.folder)], capture_output=True).returncode == 0
        if immutable and not _writable(self.folder):
            return self
        if immutable:
            subprocess.run(["chattr", "-i", str(self.folder)], check=True)
        self.moved = self.folder.with_name(self.folder.name + ".away")
        self.folder.rename(self.moved)
        self.folder.write_text("a file where the upload folder should be")
        return self

    def __exit__(self, *exc):
        if self.moved is None:
            subprocess.run(["chattr", "-i", str(self.folder)], check=True)
        else:
            self.folder.unlink()
            self.moved.rename(self.folder)


def _writable(folder: Path) -> bool:
    probe = folder / "probe"
    try:
        probe.write_bytes(b"x")
    except OSError:
        return False
    probe.unlink()
    return True


def _upload(server, opener, dossier_id: int, line_id: int):
    page = fetch(opener, f"{server.base}/portail/dossiers/{dossier_id}")
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.body).group(1)
    body, content_type = multipart({"csrf_token": token}, {"files": ("facture.pdf", factories.pdf_bytes())})
    request = urllib.request.Request(f"{server.base}/portail/dossiers/{dossier_id}/depenses/{line_id}/pieces",
                                     data=body, headers={"Content-Type": content_type})
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, html.unescape(response.read().decode())
    except urllib.error.HTTPError as error:
        return error.code, html.unescape(error.read().decode())


@pytest.fixture
def uploads(tmp_path):
    folder = tmp_path / "uploads"
    folder.mkdir()
    yield folder
    subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
    shutil.rmtree(folder, ignore_errors=True)


def test_upload_folder_unwritable_then_back(database_url, tmp_path, monkeypatch, uploads):
    app = fault_app(database_url, tmp_path, monkeypatch, UPLOAD_FOLDER=str(uploads))
    with app.app_context():
        dossier = factories.dossier("draft")
        applicant = factories.applicant_of(dossier.collectivite)
        db.session.commit()
        dossier_id, line_id, email = dossier.id, dossier.lines[0].id, applicant.email

        def documents() -> int:
            db.session.rollback()
            return db.session.scalar(select(func.count(Document.id)).where(Document.dossier_id == dossier_id))

        before = documents()
        server = AppServer(app_environment(database_url, tmp_path / "instance", UPLOAD_FOLDER=str(uploads)),
                           tmp_path / "gunicorn.log").start()
        try:
            opener = logged_in_opener(server, email, factories.PASSWORD)
            with Unwritable(uploads):
                status, body = _upload(server, opener, dossier_id, line_id)
                assert status == 503, body[:2000]
                assert "Pièces momentanément indisponibles" in body and "aucun fichier n'a été enregistré" in body
                assert documents() == before
                assert fetch(opener, f"{server.base}/portail/dossiers/{dossier_id}").status == 200
            assert list(uploads.iterdir()) == []  # no stray file either
            status, body = _upload(server, opener, dossier_id, line_id)
            assert status == 302, body[:2000]
            assert documents() == before + 1 and len(list(uploads.iterdir())) == 1
        finally:
            server.stop()
        db.session.remove()
        db.engine.dispose()
