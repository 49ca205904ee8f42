"""End to end, in Debian's headless Chromium: the admin invites an instructor; the invitation goes
through the outbox and a real SMTP server (the tests' sink); the instructor follows the e-mail's
link, chooses a password and logs in."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from instruction import clock
from instruction.extensions import db
from instruction.notifications import delivery
from instruction.notifications.models import OutboxMessage
from tests import factories
from tests.browser import ARTIFACTS, DESKTOP, chromium, log_in, require_chromium, serving
from tests.conftest import prepared_app, sibling_database_url
from tests.test_notifications_delivery import SmtpSink, parts

pytestmark = pytest.mark.browser
PASSWORD = "le cadran solaire de la mairie"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    require_chromium()
    sink = SmtpSink().start()
    app = prepared_app(sibling_database_url("e2e_admin"), tmp_path_factory.mktemp("e2e_admin"),
                       WTF_CSRF_ENABLED=True, SMTP_PORT=sink.port)
    with app.app_context():
        admin = factories.user("admin", full_name="Anne Admin")
        world = {"admin": admin.email}
        db.session.commit()
        db.session.remove()
    try:
        with serving(app) as base:
            yield {"base": base, "app": app, "sink": sink, **world}
    finally:
        sink.stop()


@pytest.fixture
def browser_page(served):

    with chromium() as browser:
        page = browser.new_page(viewport=DESKTOP, locale="fr-FR")
        page.set_default_timeout(15_000)
        yield page


def test_the_admin_invites_an_instructor_who_sets_a_password_and_logs_in(served, browser_page):
    from playwright.sync_api import expect

    base, page, app, sink = served["base"], browser_page, served["app"], served["sink"]
    log_in(page, base, served["admin"])
    page.get_by_label("Code").fill(factories.totp_code())  # an admin's second factor
    page.get_by_role("button", name="Valider").click()
    page.get_by_role("link", name="Administration").first.click()
    page.get_by_role("link", name="Personnes").first.click()
    page.get_by_label("Nom et prénom").fill("Inès Moreau")
    page.get_by_label("Adresse électronique").fill("ines.moreau@bourgognefranchecomte.fr")
    page.get_by_label("Rôle", exact=True).select_option(label="Instructeur")
    page.get_by_role("button", name="Envoyer l'invitation").click()
    expect(page.get_by_text("Invitation envoyée à ines.moreau@bourgognefranchecomte.fr")).to_be_visible()
    row = page.get_by_role("row").filter(has_text="Inès Moreau")
    expect(row).to_contain_text("adresse non confirmée")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-people.png"), full_page=True)
    page.get_by_role("button", name="Se déconnecter").click()

    # The worker's delivery, to a real SMTP server.
    with app.app_context():
        message_id = db.session.scalar(select(OutboxMessage.id).where(OutboxMessage.kind == "account_invitation"))
        assert delivery.deliver_message(message_id, now=clock.now()).sent == 1
        db.session.remove()
    [mail] = sink.wait_for(1)
    assert mail["To"] == "ines.moreau@bourgognefranchecomte.fr"
    link = re.search(r"http://127\.0\.0\.1:\d+/invitation/\S+", parts(mail)["text/plain"]).group(0)

    page.goto(link)
    expect(page.get_by_role("heading", name="Choisir mon mot de passe")).to_be_visible()
    page.get_by_label("Mot de passe", exact=True).fill(PASSWORD)
    page.get_by_label("Confirmez le mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Enregistrer mon mot de passe").click()
    expect(page.get_by_text("Votre mot de passe est enregistré")).to_be_visible()
    page.get_by_label("Adresse électronique").fill("ines.moreau@bourgognefranchecomte.fr")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_test_id("current-user")).to_contain_text("Inès Moreau · Instructeur")
    page.screenshot(path=str(ARTIFACTS / "admin-invited-instructor.png"), full_page=True)
