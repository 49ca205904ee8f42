"""French 503 pages for an unreachable database or upload store, rendered without the database
(issue 13: the error page itself queried the database, and users got gunicorn's English page)."""

from __future__ import annotations

import html

import pytest

from tests import factories
from tests.conftest import make_test_app
from tests.factories import NOW

DEAD_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=2"


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


@pytest.fixture
def dead_app(tmp_path):
    """The application configured on a database server that does not answer."""
    return make_test_app(DEAD_DATABASE, tmp_path)


def test_a_login_while_the_database_is_down_is_a_french_503(dead_app):
    with dead_app.test_client() as client:
        response = client.post("/connexion", data={"email": "agent@exemple.fr", "password": "un mot de passe"})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    body = text(response)
    assert "Service momentanément indisponible" in body and "La base de données ne répond pas" in body
    assert "Aucune donnée déjà enregistrée n'est perdue" in body


def test_a_signed_in_page_while_the_database_is_down_is_a_french_503(app, client, session, dead_app):
    """The session's user cannot be loaded (the navigation would query the database): 503."""
    user = factories.user("instructor")
    session.commit()
    factories.log_in(client, user)
    with dead_app.test_client() as down:
        down.set_cookie("session", client.get_cookie("session").value)
        for path in ("/", "/instruction/", "/notifications/"):
            response = down.get(path)
            assert response.status_code == 503, path
            assert "Service momentanément indisponible" in text(response)


@pytest.fixture
def frozen(monkeypatch):
    monkeypatch.setattr("instruction.clock.now", lambda: NOW)


def test_an_unwritable_upload_store_is_a_french_503_and_nothing_is_saved(app, client, session, frozen, tmp_path):
    import io

    from sqlalchemy import func, select

    from instruction.dossiers.models import Document

    dossier = factories.dossier("draft", aid=2)
    session.commit()
    line = dossier.lines[0]
    before = session.scalar(select(func.count(Document.id)))
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the upload folder should be")
    folder = app.config["UPLOAD_FOLDER"]
    app.config["UPLOAD_FOLDER"] = str(blocker / "uploads")
    try:
        factories.log_in(client, factories.applicant_of(dossier.collectivite))
        response = client.post(f"/portail/dossiers/{dossier.id}/depenses/{line.id}/pieces",
                               data={"files": (io.BytesIO(factories.pdf_bytes()), "facture.pdf")},
                               content_type="multipart/form-data")
    finally:
        app.config["UPLOAD_FOLDER"] = folder
    assert response.status_code == 503
    assert "Le stockage des pièces justificatives ne répond pas" in text(response)
    assert session.scalar(select(func.count(Document.id))) == before
