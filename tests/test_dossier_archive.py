"""The documents of a dossier as one zip: read back, its files are the bytes uploaded, its manifest
names each with its expense line and the SHA-256 of those bytes (computed here by hashlib);
the dossier's collectivité and staff get it, anyone else a 404, an anonymous visitor the login
page. Files deleted by the retention job are listed as such."""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from instruction.acts.models import LegalAct
from instruction.documents.retention import purge_closed_dossier_files
from instruction.dossiers import services
from tests import factories
from tests.factories import NOW

INVOICE = factories.pdf_bytes("Facture numéro 2026-118")
QUOTE = factories.png_bytes(3, 2)
MANIFEST_HEADERS = ["Fichier", "Nature", "Ligne de dépense", "Montant HT de la ligne", "Nom d'origine",
                    "Date", "Taille (octets)", "SHA-256", "État"]


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    monkeypatch.setattr("instruction.clock.now", lambda: NOW)


@pytest.fixture
def upload_dir(app):
    folder = Path(app.config["UPLOAD_FOLDER"])
    folder.mkdir(parents=True, exist_ok=True)
    yield folder


@pytest.fixture
def dossier(client, session, upload_dir):
    """A dossier of Agencourt (aid 1) with two lines, a file uploaded on each through the portal,
    then submitted (which issues its acknowledgment)."""
    agent = factories.user("applicant", collectivite=factories.commune())
    draft = services.create_draft(campaign=factories.campaign(), aid_number=1, collectivite=agent.collectivite,
                                  author=agent, title="Équipement de la mairie", now=NOW)
    computer = services.add_line(draft, category="equipement", label="Ordinateur portable",
                                 amount_ht=Decimal("1200.50"), pack=1)
    software = services.add_line(draft, category="logiciel", label="Suite bureautique",
                                 amount_ht=Decimal("300.00"), pack=3)
    session.commit()
    factories.log_in(client, agent)
    for line, name, data in ((computer, "Facture été.pdf", INVOICE), (software, "devis.png", QUOTE)):
        response = client.post(f"/portail/dossiers/{draft.id}/depenses/{line.id}/pieces",
                               data={"files": [(io.BytesIO(data), name)]}, content_type="multipart/form-data")
        assert response.status_code == 302, response.get_data(as_text=True)[:1000]
    services.submit(draft, agent, now=NOW)
    session.commit()
    client.post("/deconnexion")
    return draft, agent


def read_zip(response) -> zipfile.ZipFile:
    assert response.status_code == 200, response.get_data(as_text=True)[:1000]
    assert response.mimetype == "application/zip"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    return zipfile.ZipFile(io.BytesIO(response.get_data()))


def manifest_of(archive: zipfile.ZipFile) -> list[list[str]]:
    text = archive.read("manifeste.csv").decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:], newline=""), delimiter=";"))


def test_the_applicant_gets_every_file_and_a_manifest_of_their_sha256(client, session, dossier):
    draft, agent = dossier
    factories.log_in(client, agent)
    response = client.get(f"/documents/dossiers/{draft.id}/pieces.zip")
    assert response.is_streamed
    assert f'filename="{draft.reference}-pieces.zip"' in response.headers["Content-Disposition"]
    archive = read_zip(response)
    act = session.scalars(select(LegalAct).where(LegalAct.dossier_id == draft.id)).one()
    act_name = f"actes/{draft.reference}-acknowledgment-{act.id}.pdf"
    assert archive.namelist() == ["pieces/001 - Facture été.pdf", "pieces/002 - devis.png", act_name,
                                  "manifeste.csv"]
    assert archive.testzip() is None
    assert archive.read("pieces/001 - Facture été.pdf") == INVOICE
    assert archive.read("pieces/002 - devis.png") == QUOTE
    act_bytes = archive.read(act_name)
    assert act_bytes.startswith(b"%PDF-")
    session.refresh(act)
    assert act.sha256 == hashlib.sha256(act_bytes).hexdigest()  # rendered once and kept
    assert manifest_of(archive) == [
        MANIFEST_HEADERS,
        ["pieces/001 - Facture été.pdf", "Facture ou devis", "Équipement · Ordinateur portable", "1 200,50 €",
         "Facture été.pdf", "28/11/2026", str(len(INVOICE)), hashlib.sha256(INVOICE).hexdigest(), "Présent"],
        ["pieces/002 - devis.png", "Facture ou devis", "Logiciel · Suite bureautique", "300,00 €",
         "devis.png", "28/11/2026", str(len(QUOTE)), hashlib.sha256(QUOTE).hexdigest(), "Présent"],
        [act_name, "Accusé de réception", "", "", "", "28/11/2026", str(len(act_bytes)),
         hashlib.sha256(act_bytes).hexdigest(), "Présent"],
    ]


@pytest.mark.parametrize("role", ["instructor", "finance", "admin"])
def test_staff_get_the_zip_of_a_submitted_dossier(client, session, dossier, role):
    draft, _ = dossier
    factories.staff_logged_in(client, session, role)
    archive = read_zip(client.get(f"/documents/dossiers/{draft.id}/pieces.zip"))
    assert archive.read("pieces/002 - devis.png") == QUOTE


def test_another_collectivite_and_unknown_dossiers_are_404(client, session, dossier):
    draft, _ = dossier
    factories.log_in(client, factories.user("applicant", collectivite=factories.epci()))
    session.commit()
    assert client.get(f"/documents/dossiers/{draft.id}/pieces.zip").status_code == 404
    assert client.get("/documents/dossiers/999999/pieces.zip").status_code == 404


def test_a_draft_is_its_collectivites_alone(client, session, upload_dir):
    draft = factories.dossier("draft", aid=1)
    session.commit()
    factories.staff_logged_in(client, session, "admin")
    assert client.get(f"/documents/dossiers/{draft.id}/pieces.zip").status_code == 404
    client.post("/deconnexion")
    factories.log_in(client, factories.applicant_of(draft.collectivite))
    archive = read_zip(client.get(f"/documents/dossiers/{draft.id}/pieces.zip"))
    # The factory's document has no stored file: listed, not zipped.
    assert archive.namelist() == ["manifeste.csv"]
    assert [row[0] for row in manifest_of(archive)[1:]] == ["pieces/001 - facture.pdf"]


def test_anonymous_visitors_are_sent_to_login(client, session, dossier):
    draft, _ = dossier
    response = client.get(f"/documents/dossiers/{draft.id}/pieces.zip")
    assert response.status_code == 302 and "/connexion?next=" in response.headers["Location"]


def test_files_purged_at_the_end_of_retention_are_listed_as_purged(app, client, session, dossier):
    draft, agent = dossier
    services.withdraw(draft, agent, "Projet abandonné.", now=NOW)
    session.commit()
    later = NOW + timedelta(days=366)
    assert purge_closed_dossier_files(later, retention_days=365).startswith("2 pièce(s) supprimée(s)")
    factories.log_in(client, agent)
    archive = read_zip(client.get(f"/documents/dossiers/{draft.id}/pieces.zip"))
    assert [n for n in archive.namelist() if not n.startswith("actes/")] == ["manifeste.csv"]
    rows = manifest_of(archive)[1:3]
    purged = f"Supprimé le {(later.date()).strftime('%d/%m/%Y')} à l'issue de la durée de conservation (dossier clos)"
    assert rows == [
        ["pieces/001 - Facture été.pdf", "Facture ou devis", "Équipement · Ordinateur portable", "1 200,50 €",
         "Facture été.pdf", "28/11/2026", str(len(INVOICE)), hashlib.sha256(INVOICE).hexdigest(), purged],
        ["pieces/002 - devis.png", "Facture ou devis", "Logiciel · Suite bureautique", "300,00 €",
         "devis.png", "28/11/2026", str(len(QUOTE)), hashlib.sha256(QUOTE).hexdigest(), purged],
    ]


def test_a_missing_or_altered_file_is_said_in_the_manifest(client, session, dossier, upload_dir):
    draft, agent = dossier
    invoice, quote = sorted(draft.documents, key=lambda d: d.id)
    (upload_dir / invoice.storage_key).unlink()
    (upload_dir / quote.storage_key).write_bytes(b"\x89PNG altered")
    factories.log_in(client, agent)
    archive = read_zip(client.get(f"/documents/dossiers/{draft.id}/pieces.zip"))
    assert "pieces/001 - Facture été.pdf" not in archive.namelist()
    assert archive.read("pieces/002 - devis.png") == b"\x89PNG altered"
    rows = {row[0]: row for row in manifest_of(archive)[1:]}
    assert rows["pieces/001 - Facture été.pdf"][7:] == [hashlib.sha256(INVOICE).hexdigest(),
                                                          "Fichier introuvable dans le stockage"]
    assert rows["pieces/002 - devis.png"][7:] == [
        hashlib.sha256(b"\x89PNG altered").hexdigest(),
        f"Empreinte différente de celle enregistrée ({hashlib.sha256(QUOTE).hexdigest()})"]


def test_the_dossier_pages_link_to_the_zip(client, session, dossier):
    draft, agent = dossier
    factories.log_in(client, agent)
    assert f'href="/documents/dossiers/{draft.id}/pieces.zip"' in client.get(
        f"/portail/dossiers/{draft.id}").get_data(as_text=True)
    client.post("/deconnexion")
    factories.staff_logged_in(client, session)
    assert f'href="/documents/dossiers/{draft.id}/pieces.zip"' in client.get(
        f"/instruction/dossiers/{draft.id}").get_data(as_text=True)
