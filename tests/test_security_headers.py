"""Security headers (issue 13): CSP without inline script, no framing, nosniff, referrer, HSTS."""

from __future__ import annotations

import re

import pytest

from tests import factories
from tests.factories import NOW


def csp(response) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    return {part.split()[0]: part.strip() for part in policy.split(";") if part.strip()}


def test_an_html_page_sends_the_security_headers(client):
    response = client.get("/connexion")
    assert response.status_code == 200
    policy = csp(response)
    assert policy["frame-ancestors"] == "frame-ancestors 'none'"
    assert policy["script-src"] == "script-src 'self'"
    assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]
    assert policy["object-src"] == "object-src 'none'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in response.headers  # plain HTTP: no HSTS


def test_hsts_behind_https(client):
    response = client.get("/connexion", base_url="https://aides.example")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_static_files_are_not_sniffed(client):
    response = client.get("/static/app.css")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.I)
INLINE_STYLE = re.compile(r"<style\b|\sstyle\s*=", re.I)


@pytest.fixture
def frozen(monkeypatch):
    monkeypatch.setattr("instruction.clock.now", lambda: NOW)


def test_no_page_carries_inline_script_or_style(app, client, session, frozen):
    """What the CSP forbids must not be needed: the pages users see most, for each role."""
    dossier = factories.dossier("received", aid=2)
    draft = factories.dossier("draft", aid=1)
    session.commit()
    pages = []
    pages += [client.get("/connexion"), client.get("/inscription"), client.get("/mot-de-passe-oublie")]
    factories.log_in(client, factories.applicant_of(draft.collectivite))
    pages += [client.get("/portail/"), client.get(f"/portail/dossiers/{draft.id}"), client.get("/compte/")]
    client.post("/deconnexion")
    factories.staff_logged_in(client, session, "instructor")
    pages += [client.get("/"), client.get("/instruction/"), client.get(f"/instruction/dossiers/{dossier.id}"),
              client.get("/notifications/"), client.get("/nulle-part")]
    for response in pages:
        body = response.get_data(as_text=True)
        assert response.status_code in (200, 404), response.request.path
        assert not INLINE_SCRIPT.search(body), (response.request.path, INLINE_SCRIPT.search(body).group(0))
        assert not INLINE_HANDLER.search(body), response.request.path
        assert not INLINE_STYLE.search(body), (response.request.path, INLINE_STYLE.search(body).group(0))
