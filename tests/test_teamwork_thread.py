"""The message thread of a dossier, in the portal and the back-office: text and attachments (the
invoices' upload defences), author and instant, read receipts both ways, line breaks kept, the
request for documents as a message of the thread with its deadline; who may post where."""

from __future__ import annotations

import html
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from instruction.dossiers.models import Document, DossierMessage
from tests import factories
from tests.factories import NOW

SOON = NOW + timedelta(minutes=30)  # after the submission: 28 novembre 2026 à 11:30 in Paris
LATER = NOW + timedelta(hours=2)  # 28 novembre 2026 à 13:00 in Paris


@pytest.fixture
def clock(monkeypatch):
    state = {"now": SOON}
    monkeypatch.setattr("instruction.clock.now", lambda: state["now"])
    return state


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def thread(page: str) -> str:
    start = page.index('data-testid="thread"')
    return page[start:page.index("</section>", start)]


def world(session):
    """A received dossier of the CC de la Plaine Dijonnaise, its agent, its instructor (assigned)."""
    dossier = factories.dossier("received", aid=2)
    agent = factories.applicant_of(dossier.collectivite)
    instructor = factories.user("instructor", full_name="Inès Moreau")
    dossier.assigned_to = instructor
    session.commit()
    return dossier, agent, instructor


def post_portal(client, dossier, body="", files=()):
    data = {"body": body, "files": [(f, n) for n, f in files]}
    return client.post(f"/portail/dossiers/{dossier.id}/messages", data=data,
                       content_type="multipart/form-data")


def post_staff(client, dossier, body="", files=()):
    data = {"body": body, "files": [(f, n) for n, f in files]}
    return client.post(f"/instruction/dossiers/{dossier.id}/messages", data=data,
                       content_type="multipart/form-data")


def upload(name: str, content: bytes):
    import io

    return (name, io.BytesIO(content))


def test_applicant_message_with_a_file_reaches_the_instructor_who_reads_it(app, client, session, clock):
    dossier, agent, instructor = world(session)
    factories.log_in(client, agent)
    response = post_portal(client, dossier, "Voici la facture signée.\r\nEt le devis.",
                           [upload("facture-signée.pdf", factories.pdf_bytes("Facture"))])
    assert response.status_code == 302
    message = session.scalar(select(DossierMessage).where(DossierMessage.dossier_id == dossier.id))
    assert (message.body, message.from_staff, message.kind, message.author_id, message.created_at) == (
        "Voici la facture signée.\nEt le devis.", False, "message", agent.id, SOON)
    [attachment] = message.attachments
    assert (attachment.original_name, attachment.dossier_id, attachment.line_id, attachment.uploaded_by_id) == (
        "facture-signée.pdf", dossier.id, None, agent.id)

    page = text(client.get(f"/portail/dossiers/{dossier.id}"))
    mine = thread(page)
    assert "Voici la facture signée.\nEt le devis." in mine and "pre-line" in mine
    assert "Non lu pour l'instant" in mine
    assert "facture-signée.pdf" in mine

    client.post("/deconnexion")
    factories.log_in(client, instructor)
    clock["now"] = LATER
    staff_page = text(client.get(f"/instruction/dossiers/{dossier.id}"))
    staff_thread = thread(staff_page)
    assert f"{agent.full_name} (CC de la Plaine Dijonnaise)" in staff_thread
    assert "28 novembre 2026 à 11:30" in staff_thread  # 10:30 UTC in Paris
    assert 'data-testid="new">nouveau' in staff_thread
    changed = staff_page[staff_page.index('data-testid="changed"'):]
    assert changed.startswith('data-testid="changed">Depuis votre dernière consultation : 1 nouveau message, 1 nouvelle pièce.'), changed[:200]
    # Opened: the receipt is written, and the marker is gone on the next visit.
    session.expire_all()
    message = session.get(DossierMessage, message.id)
    assert (message.read_at, message.read_by_id) == (LATER, instructor.id)
    again = text(client.get(f"/instruction/dossiers/{dossier.id}"))
    assert 'data-testid="new">nouveau' not in thread(again) and "Depuis votre dernière consultation" not in again

    client.post("/deconnexion")
    factories.log_in(client, agent)
    assert "✓ Lu par la Région le 28 novembre 2026 à 13:00" in thread(text(client.get(f"/portail/dossiers/{dossier.id}")))


def test_staff_message_is_read_by_the_applicant_and_the_receipt_shows_in_the_back_office(client, session, clock):
    dossier, agent, instructor = world(session)
    factories.log_in(client, instructor)
    assert post_staff(client, dossier, "Bonjour,\n\nPouvez-vous préciser le devis ?").status_code == 302
    message = session.scalar(select(DossierMessage).where(DossierMessage.dossier_id == dossier.id))
    assert (message.from_staff, message.read_at) == (True, None)
    assert "Non lu pour l'instant" in thread(text(client.get(f"/instruction/dossiers/{dossier.id}")))
    # Another staff member opening the page is not the applicant: still unread.
    client.post("/deconnexion")
    factories.staff_logged_in(client, session, "finance")
    client.get(f"/instruction/dossiers/{dossier.id}")
    session.expire_all()
    assert session.get(DossierMessage, message.id).read_at is None

    client.post("/deconnexion")
    factories.log_in(client, agent)
    clock["now"] = LATER
    portal = thread(text(client.get(f"/portail/dossiers/{dossier.id}")))
    assert "Région Bourgogne-Franche-Comté" in portal and instructor.full_name not in portal
    assert "Bonjour,\n\nPouvez-vous préciser le devis ?" in portal
    client.post("/deconnexion")
    factories.log_in(client, instructor)
    assert "✓ Lu par le demandeur le 28 novembre 2026 à 13:00" in thread(
        text(client.get(f"/instruction/dossiers/{dossier.id}")))


def test_a_refused_file_sends_nothing_and_keeps_nothing(app, client, session, clock, tmp_path):
    dossier, agent, _ = world(session)
    factories.log_in(client, agent)
    before = session.scalar(select(func.count()).select_from(Document))
    response = post_portal(client, dossier, "Ci-joint", [upload("facture.pdf", factories.pdf_bytes()),
                                                         upload("programme.pdf", b"MZ\x90\x00" + b"\x00" * 200)])
    assert response.status_code == 400
    body = text(response)
    assert "« programme.pdf » refusé" in body and "Le message n'est pas envoyé" in body
    assert "Ci-joint" in body  # what was typed is still there
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(DossierMessage)
                          .where(DossierMessage.dossier_id == dossier.id)) == 0
    assert session.scalar(select(func.count()).select_from(Document)) == before


def test_an_empty_message_is_a_400(client, session, clock):
    dossier, agent, instructor = world(session)
    factories.log_in(client, agent)
    response = post_portal(client, dossier, "   ")
    assert response.status_code == 400 and "Écrivez un message ou joignez un fichier." in text(response)
    client.post("/deconnexion")
    factories.log_in(client, instructor)
    response = post_staff(client, dossier, "")
    assert response.status_code == 400 and "Écrivez un message ou joignez un fichier." in text(response)


def test_who_may_post_where(client, session, clock):
    dossier, agent, instructor = world(session)
    stranger = factories.user("applicant", collectivite=factories.commune("21001"))
    draft = factories.dossier("draft", aid=2)
    session.commit()
    # Anonymous: to the login page, on both sides.
    assert post_portal(client, dossier, "x").status_code == 302
    assert "/connexion" in post_portal(client, dossier, "x").headers["Location"]
    assert "/connexion" in post_staff(client, dossier, "x").headers["Location"]
    # An agent of another collectivité: 404 (the dossier is not revealed); the back-office: 403.
    factories.log_in(client, stranger)
    assert post_portal(client, dossier, "x").status_code == 404
    assert post_staff(client, dossier, "x").status_code == 403
    client.post("/deconnexion")
    # The dossier's own agent may not post as staff; on a draft there is no thread to post to.
    factories.log_in(client, agent)
    assert post_staff(client, dossier, "x").status_code == 403
    response = post_portal(client, draft, "x")
    assert response.status_code == 403 and "Ce dossier ne vous est pas accessible." in text(response)
    client.post("/deconnexion")
    # Staff post in the back-office only, never on a draft (404, as the draft page).
    factories.log_in(client, instructor)
    assert post_portal(client, dossier, "x").status_code == 403
    assert post_staff(client, draft, "x").status_code == 404
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(DossierMessage)
                          .where(DossierMessage.body == "x")) == 0


def test_a_request_for_documents_is_a_message_with_its_deadline(client, session, clock):
    dossier, agent, instructor = world(session)
    factories.log_in(client, instructor)
    response = client.post(f"/instruction/dossiers/{dossier.id}/actions/request_documents",
                           data={"reason": "La facture signée,\nle devis daté.", "due_on": "2026-12-15"})
    assert response.status_code == 302
    session.expire_all()
    [message] = session.scalars(select(DossierMessage).where(DossierMessage.dossier_id == dossier.id)).all()
    assert (message.kind, message.from_staff, message.due_on, message.body) == (
        "request_documents", True, date(2026, 12, 15), "La facture signée,\nle devis daté.")
    staff_thread = thread(text(client.get(f"/instruction/dossiers/{dossier.id}")))
    assert "Demande de pièces" in staff_thread and "au plus tard le 15 décembre 2026" in staff_thread
    client.post("/deconnexion")
    factories.log_in(client, agent)
    page = text(client.get(f"/portail/dossiers/{dossier.id}"))
    assert "réponse attendue au plus tard le 15 décembre 2026" in page
    home = text(client.get("/portail/"))
    banner = home[home.index('data-testid="waiting-banner"'):]
    banner = " ".join(banner[:banner.index("</section>")].split())
    assert "des pièces vous sont demandées, à faire au plus tard le <strong>15 décembre 2026</strong>" in banner


def test_a_request_for_documents_due_today_or_before_is_refused(client, session, clock):
    dossier, _, instructor = world(session)
    factories.log_in(client, instructor)
    response = client.post(f"/instruction/dossiers/{dossier.id}/actions/request_documents",
                           data={"reason": "La facture.", "due_on": "28/11/2026"})
    assert response.status_code == 400
    assert "La date limite de réponse doit être postérieure à aujourd'hui." in text(response)
    session.expire_all()
    assert session.get(type(dossier), dossier.id).state == "received"
