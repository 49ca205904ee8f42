"""Uploads are hostile until proven otherwise; stored files are served only to who may see them."""

from __future__ import annotations

import hashlib
import html
import io
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from instruction.documents import services as documents
from instruction.dossiers import services
from instruction.dossiers.models import Document
from instruction.dossiers.services import InvalidAction
from instruction.extensions import db
from instruction.web.actions import perform
from tests import factories
from tests.factories import NOW

MB = 1024 * 1024


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    monkeypatch.setattr("instruction.clock.now", lambda: NOW)


@pytest.fixture
def upload_dir(app):
    """The test app's upload folder, emptied before and after each test."""
    folder = Path(app.config["UPLOAD_FOLDER"])
    folder.mkdir(parents=True, exist_ok=True)
    for path in folder.iterdir():
        path.unlink()
    yield folder
    for path in folder.iterdir():
        path.unlink()


@pytest.fixture
def draft(client, session, upload_dir):
    """A logged-in agent of Agencourt and a draft of aid 1 with one line (no document yet)."""
    user = factories.user("applicant", collectivite=factories.commune())
    dossier = services.create_draft(campaign=factories.campaign(), aid_number=1,
                                    collectivite=user.collectivite, author=user, now=NOW)
    line = services.add_line(dossier, category="equipement", label="Ordinateur",
                             amount_ht=Decimal("1200.00"), pack=1)
    session.commit()
    client.post("/connexion", data={"email": user.email, "password": factories.PASSWORD})
    return dossier, line


def send(client, dossier, line, *files):
    return client.post(f"/portail/dossiers/{dossier.id}/depenses/{line.id}/pieces",
                       data={"files": [(io.BytesIO(data), name) for name, data in files]},
                       content_type="multipart/form-data")


def send_raw(client, dossier, line, filename_param: bytes, data: bytes):
    """A multipart body written by hand, to send file names no browser would (escapes, CR LF)."""
    body = (b'--limite\r\nContent-Disposition: form-data; name="files"; ' + filename_param
            + b"\r\nContent-Type: application/pdf\r\n\r\n" + data + b"\r\n--limite--\r\n")
    return client.post(f"/portail/dossiers/{dossier.id}/depenses/{line.id}/pieces", data=body,
                       content_type="multipart/form-data; boundary=limite")


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True)).replace("\u00a0", " ")


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("facture.pdf", factories.pdf_bytes())
    return buffer.getvalue()


SVG = (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
       b'<script>alert(document.cookie)</script></svg>')
HTML = b"<!doctype html><html><body><script>fetch('/portail/')</script></body></html>"

# (name sent, content, what the message must say)
HOSTILE = {
    "pdf renamed .exe": ("facture.exe", factories.pdf_bytes(), "l'extension « .exe » ne correspond pas à son contenu (PDF)"),
    "html named .pdf": ("facture.pdf", HTML, "ni un PDF, ni une image JPEG ou PNG"),
    "svg": ("logo.svg", SVG, "ni un PDF, ni une image JPEG ou PNG"),
    "svg named .png": ("logo.png", SVG, "ni un PDF, ni une image JPEG ou PNG"),
    "zip": ("factures.zip", zip_bytes(), "ce fichier est une archive ZIP"),
    "zip named .pdf": ("facture.pdf", zip_bytes(), "ce fichier est une archive ZIP"),
    "windows program": ("facture.pdf", b"MZ\x90\x00" + bytes(200), "ce fichier est un programme"),
    "empty file": ("vide.pdf", b"", "le fichier est vide"),
    "over the limit": ("scan.pdf", b"%PDF-1.4\n" + b"0" * (10 * MB), "il fait plus de 10 Mo"),
    "path traversal": ("../../etc/passwd.pdf", factories.pdf_bytes(), "contient un chemin ou des caractères de contrôle"),
    "png renamed .pdf": ("photo.pdf", factories.png_bytes(), "l'extension « .pdf » ne correspond pas à son contenu (PNG)"),
    "jpeg without extension": ("photo", factories.jpeg_bytes(), "l'absence d'extension ne correspond pas"),
    "pdf without its header": ("faux.pdf", b"%PDF\x00" + bytes(50), "ce n'est pas un PDF valide"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_uploads_are_refused_and_nothing_is_stored(client, session, draft, upload_dir, case):
    dossier, line = draft
    name, data, reason = HOSTILE[case]
    response = send(client, dossier, line, (name, data))
    assert response.status_code == 400
    page = text(response)
    shown = documents.display_name(name)
    assert f"« {shown} » refusé" in page and reason in page
    assert session.scalar(select(func.count()).select_from(Document)) == 0
    assert list(upload_dir.iterdir()) == []


# File names as raw Content-Disposition parameters, and the name the application receives.
HOSTILE_NAMES = {
    "windows path": (b'filename="..\\\\..\\\\boot.pdf"', "..\\..\\boot.pdf"),
    "control characters": (b'filename="fac\x00ture\x1b[31m\x07.pdf"', "fac\x00ture\x1b[31m\x07.pdf"),
    "encoded traversal and CR LF": (b"filename*=UTF-8''..%2F..%2Fetc%2Fpasswd%0D%0A.pdf", "../../etc/passwd\r\n.pdf"),
    "CR LF only": (b"filename*=UTF-8''facture%0D%0A.pdf", "facture\r\n.pdf"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_NAMES))
def test_hostile_names_are_refused_and_nothing_is_stored(client, session, draft, upload_dir, case):
    dossier, line = draft
    param, received = HOSTILE_NAMES[case]
    response = send_raw(client, dossier, line, param, factories.pdf_bytes())
    assert response.status_code == 400
    page = text(response)
    assert f"« {documents.display_name(received)} » refusé" in page
    assert "le nom du fichier contient un chemin ou des caractères de contrôle" in page
    assert "\x1b" not in page and "\x00" not in page
    assert session.scalar(select(func.count()).select_from(Document)) == 0
    assert list(upload_dir.iterdir()) == []


@pytest.mark.parametrize("name, data, content_type", [
    ("Facture équipement.pdf", factories.pdf_bytes(), "application/pdf"),
    ("photo-devis.PNG", factories.png_bytes(), "image/png"),
    ("scan.jpeg", factories.jpeg_bytes(), "image/jpeg"),
    ("scan.jpg", factories.jpeg_bytes(), "image/jpeg"),
])
def test_valid_files_are_stored_with_their_sha256(client, session, draft, upload_dir, name, data, content_type):
    dossier, line = draft
    response = send(client, dossier, line, (name, data))
    assert response.status_code == 302
    document = session.scalar(select(Document))
    assert (document.original_name, document.content_type, document.size_bytes) == (name, content_type, len(data))
    assert document.sha256 == hashlib.sha256(data).hexdigest()
    assert document.line_id == line.id and document.dossier_id == dossier.id
    stored = upload_dir / document.storage_key
    assert stored.read_bytes() == data and list(upload_dir.iterdir()) == [stored]
    assert len(document.storage_key) == 64 and name not in document.storage_key


def test_good_files_are_kept_when_another_is_refused(client, session, draft, upload_dir):
    dossier, line = draft
    response = send(client, dossier, line, ("devis.pdf", factories.pdf_bytes()), ("virus.exe", b"MZ" + bytes(99)))
    assert response.status_code == 400
    page = text(response)
    assert "« devis.pdf » est joint" in page and "« virus.exe » refusé" in page
    assert [d.original_name for d in session.scalars(select(Document))] == ["devis.pdf"]
    assert len(list(upload_dir.iterdir())) == 1


def test_no_file_chosen(client, session, draft):
    dossier, line = draft
    response = client.post(f"/portail/dossiers/{dossier.id}/depenses/{line.id}/pieces", data={},
                           content_type="multipart/form-data")
    assert response.status_code == 400 and "Choisissez au moins un fichier" in text(response)


def test_a_huge_body_gets_a_french_413(client, session, draft, upload_dir):
    dossier, line = draft
    response = send(client, dossier, line, ("enorme.pdf", b"%PDF-1.4\n" + b"0" * (12 * MB)))
    assert response.status_code == 413 and "Envoi trop volumineux" in text(response)
    assert session.scalar(select(func.count()).select_from(Document)) == 0
    assert list(upload_dir.iterdir()) == []


def test_names_are_sanitised():
    assert documents.sanitise_name("C:\\Users\\moi\\facture.pdf") == "facture.pdf"
    assert documents.sanitise_name("facture\u202egpj.pdf") == "facturegpj.pdf"  # no right-to-left trick
    assert documents.sanitise_name("  ..facture   mars\t2026.pdf ") == "facture mars 2026.pdf"
    long = documents.sanitise_name("a" * 300 + ".pdf")
    assert len(long) == documents.MAX_NAME_LENGTH and long.endswith(".pdf")
    assert documents.display_name("a\x00b") == "a?b"


def test_a_bidi_trick_is_stored_harmless(client, session, draft):
    dossier, line = draft
    assert send(client, dossier, line, ("facture\u202efdp.pdf", factories.pdf_bytes())).status_code == 302
    assert session.scalar(select(Document.original_name)) == "facturefdp.pdf"


def test_uploads_refused_once_submitted(client, session, upload_dir):
    dossier = factories.dossier("received", aid=1)
    client.post("/connexion", data={"email": factories.applicant_of(dossier.collectivite).email,
                                    "password": factories.PASSWORD})
    session.commit()
    before = session.scalar(select(func.count()).select_from(Document))
    response = send(client, dossier, dossier.lines[0], ("facture.pdf", factories.pdf_bytes()))
    assert response.status_code == 409
    assert session.scalar(select(func.count()).select_from(Document)) == before
    assert list(upload_dir.iterdir()) == []


def test_removing_a_document_of_a_draft_deletes_its_file(client, session, draft, upload_dir):
    dossier, line = draft
    send(client, dossier, line, ("facture.pdf", factories.pdf_bytes()))
    document = session.scalar(select(Document))
    response = client.post(f"/portail/dossiers/{dossier.id}/pieces/{document.id}/supprimer")
    assert response.status_code == 302
    assert session.scalar(select(func.count()).select_from(Document)) == 0
    assert list(upload_dir.iterdir()) == []


def test_removing_a_line_of_a_draft_deletes_its_files(client, session, draft, upload_dir):
    dossier, line = draft
    send(client, dossier, line, ("facture.pdf", factories.pdf_bytes()), ("devis.png", factories.png_bytes()))
    assert len(list(upload_dir.iterdir())) == 2
    assert client.post(f"/portail/dossiers/{dossier.id}/depenses/{line.id}/supprimer").status_code == 302
    assert session.scalar(select(func.count()).select_from(Document)) == 0
    assert list(upload_dir.iterdir()) == []


def test_a_failed_commit_leaves_no_file_behind(app, session, upload_dir, monkeypatch):
    dossier = factories.dossier("draft", aid=1)
    checked = documents.check_file("facture.pdf", factories.pdf_bytes(), 10 * MB)
    document = documents.store(dossier, checked, line=dossier.lines[0], uploader=None, now=NOW)
    assert (upload_dir / document.storage_key).is_file()

    def broken_commit():
        raise OperationalError("COMMIT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(db.session, "commit", broken_commit)
    with pytest.raises(OperationalError):
        perform(lambda: None)
    assert list(upload_dir.iterdir()) == []


def test_a_refused_operation_leaves_no_file_behind(app, session, upload_dir):
    dossier = factories.dossier("draft", aid=1)
    checked = documents.check_file("facture.pdf", factories.pdf_bytes(), 10 * MB)

    def store_then_refuse():
        documents.store(dossier, checked, line=dossier.lines[0], uploader=None, now=NOW)
        assert len(list(upload_dir.iterdir())) == 1
        raise InvalidAction("Refusé après coup.")

    error = perform(store_then_refuse)
    assert error is not None and error.message == "Refusé après coup."
    assert list(upload_dir.iterdir()) == []


def test_a_committed_file_stays(app, session, upload_dir):
    dossier = factories.dossier("draft", aid=1)
    checked = documents.check_file("facture.pdf", factories.pdf_bytes(), 10 * MB)
    assert perform(documents.store, dossier, checked, line=dossier.lines[0], uploader=None, now=NOW) is None
    session.rollback()  # a later transaction rolling back does not touch it
    assert len(list(upload_dir.iterdir())) == 1


# --- serving ---------------------------------------------------------------------------------------


@pytest.fixture
def stored(client, session, draft):
    dossier, line = draft
    send(client, dossier, line, ("Facture été 2026.pdf", factories.pdf_bytes()), ("photo.png", factories.png_bytes()))
    pdf, png = session.scalars(select(Document).order_by(Document.id)).all()
    client.post("/deconnexion")
    return dossier, pdf, png


def login_as(client, user):
    factories.log_in(client, user)


def test_download_is_an_attachment_with_safe_headers(client, session, stored):
    dossier, pdf, _ = stored
    login_as(client, factories.applicant_of(dossier.collectivite))
    response = client.get(f"/documents/{pdf.id}/telecharger")
    assert response.status_code == 200 and response.data == factories.pdf_bytes()
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Disposition"] == (
        "attachment; filename=\"Facture ete 2026.pdf\"; filename*=UTF-8''Facture%20%C3%A9t%C3%A9%202026.pdf")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert "sandbox" in response.headers["Content-Security-Policy"]


def test_preview_is_inline_with_the_sniffed_type(client, session, stored):
    dossier, pdf, png = stored
    login_as(client, factories.applicant_of(dossier.collectivite))
    response = client.get(f"/documents/{png.id}/apercu")
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
    assert response.headers["Content-Disposition"].startswith("inline;")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert client.get(f"/documents/{pdf.id}/apercu").headers["Content-Type"] == "application/pdf"


def test_another_collectivite_never_downloads_a_file(client, session, stored):
    _, pdf, png = stored
    login_as(client, factories.user("applicant", collectivite=factories.epci()))
    session.commit()
    for document in (pdf, png):
        assert client.get(f"/documents/{document.id}/telecharger").status_code == 404
        assert client.get(f"/documents/{document.id}/apercu").status_code == 404
    assert client.get("/documents/999999/telecharger").status_code == 404


@pytest.mark.parametrize("role", ["instructor", "finance", "admin"])
def test_staff_download_every_submitted_file(client, session, stored, role):
    dossier, pdf, png = stored
    login_as(client, factories.user(role))
    session.commit()
    # A draft still belongs to its collectivité alone.
    assert client.get(f"/documents/{pdf.id}/telecharger").status_code == 404
    services.submit(dossier, factories.applicant_of(dossier.collectivite), now=NOW)
    session.commit()
    response = client.get(f"/documents/{pdf.id}/telecharger")
    assert response.status_code == 200 and response.data == factories.pdf_bytes()
    assert client.get(f"/documents/{png.id}/apercu").status_code == 200


def test_anonymous_users_are_sent_to_login(client, session, stored):
    _, pdf, _ = stored
    response = client.get(f"/documents/{pdf.id}/telecharger")
    assert response.status_code == 302 and "/connexion" in response.headers["Location"]


def test_a_missing_file_is_a_404_not_a_500(client, session, stored, upload_dir):
    dossier, pdf, _ = stored
    (upload_dir / pdf.storage_key).unlink()
    login_as(client, factories.applicant_of(dossier.collectivite))
    assert client.get(f"/documents/{pdf.id}/telecharger").status_code == 404
