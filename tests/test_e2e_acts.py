"""End to end, in Debian's headless Chromium: an applicant submits a dossier and downloads its
acknowledgment of receipt; once the dossier is granted, the decision letter."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from instruction.dossiers import services
from instruction.dossiers.models import Dossier
from instruction.extensions import db
from tests import factories
from tests.a11y import confirm_step
from tests.browser import ARTIFACTS, DESKTOP, chromium, log_in, require_chromium, serving
from tests.conftest import prepared_app, sibling_database_url

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app on a free port, with a draft of the CC de la Plaine Dijonnaise ready to submit."""
    require_chromium()
    app = prepared_app(sibling_database_url("e2e_acts"), tmp_path_factory.mktemp("e2e_acts"),
                       WTF_CSRF_ENABLED=True)
    with app.app_context():
        epci = factories.epci()
        agent = factories.user("applicant", collectivite=epci, email="dgs@plaine-dijonnaise.exemple.fr",
                               full_name="Paul Girard")
        dossier = factories.dossier("draft", aid=2, collectivite=epci)
        world = {"email": agent.email, "dossier": dossier.id}
        db.session.commit()
        db.session.remove()
    with serving(app) as base:
        yield {"base": base, "app": app, **world}


def pdf_text(path) -> str:
    return "".join("".join(p.extract_text() for p in PdfReader(io.BytesIO(path.read_bytes())).pages).split())


def test_an_applicant_downloads_the_acknowledgment_then_the_grant_letter(served, monkeypatch):
    from playwright.sync_api import expect

    monkeypatch.setattr("instruction.clock.now", lambda: factories.NOW)  # 28 November 2026
    base = served["base"]
    with chromium() as browser:
        page = browser.new_page(viewport=DESKTOP, locale="fr-FR",
                                accept_downloads=True)
        page.set_default_timeout(20_000)
        log_in(page, base, served["email"])
        page.goto(f"{base}/portail/dossiers/{served['dossier']}")
        confirm_step(page, "submit-step", "Confirmer le dépôt")
        expect(page.get_by_test_id("state")).to_have_text("Reçu")
        expect(page.get_by_test_id("implicit-decision")).to_contain_text("28 janvier 2027")
        with page.expect_download() as download:
            page.get_by_test_id("act-acknowledgment").click()
        acknowledgment = download.value.path()
        text = pdf_text(acknowledgment)
        assert "Accuséderéception" in text and "réputéerejetéele28janvier2027" in text
        assert "TribunaladministratifdeBesançon" in text

        with served["app"].app_context():  # the instructor's decisions (their own e2e test)
            dossier = db.session.get(Dossier, served["dossier"])
            instructor = factories.user("instructor")
            services.declare_eligible(dossier, instructor, now=factories.NOW)
            services.grant(dossier, instructor, now=factories.NOW)
            db.session.commit()
            db.session.remove()

        page.reload()
        expect(page.get_by_test_id("state")).to_have_text("Attribué")
        with page.expect_download() as download:
            page.get_by_test_id("act-grant").click()
        text = pdf_text(download.value.path())
        assert "Notificationd'attributiondesubvention" in text
        assert "4000,00€" in text and "quatremilleeuros" in text
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "portal-acts.png"), full_page=True)
