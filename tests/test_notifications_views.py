"""In-app notifications: the user's own deliveries, newest first, in French, marked read."""

from __future__ import annotations

import re

from sqlalchemy import select

from instruction import clock
from instruction.dossiers import services
from instruction.notifications.models import Delivery
from instruction.notifications.services import queue
from tests import factories
from tests.factories import NOW


def badge(html: str) -> str | None:
    found = re.search(r'data-testid="unread-count">(\d+)', html)
    return found.group(1) if found else None


def test_applicant_sees_their_notifications_newest_first_with_badge(client, session):
    dossier = factories.dossier("received")
    applicant = factories.applicant_of(dossier.collectivite)
    services.request_documents(dossier, factories.staff("instructor"), "La facture signée.", now=NOW)
    queue("password_reset", key="reset:1", recipients=[applicant], context={"url": "https://x/y", "full_name": "A"},
          now=clock.now())
    stranger = factories.user("applicant", collectivite=factories.epci("200023075"))
    factories.dossier("received", collectivite=stranger.collectivite)
    session.commit()
    factories.log_in(client, applicant)

    html = client.get("/notifications/").get_data(as_text=True)

    assert "Pièces demandées" in html and "Dossier déposé" in html
    assert html.index("Pièces demandées") < html.index("Dossier déposé")  # newest first
    assert "La facture signée." in html and dossier.reference in html
    assert "Réinitialisation" not in html  # account e-mails are not listed
    assert badge(html) == "2"
    for row in session.scalars(select(Delivery).where(Delivery.user_id == applicant.id,
                                                      Delivery.message.has(kind="submit"))):
        assert f'action="/notifications/{row.id}/ouvrir"' in html


def test_following_a_notification_marks_it_read_and_leads_to_the_dossier(client, session):
    dossier = factories.dossier("received")
    applicant = factories.applicant_of(dossier.collectivite)
    session.commit()
    factories.log_in(client, applicant)
    row = session.scalar(select(Delivery).where(Delivery.user_id == applicant.id))

    response = client.post(f"/notifications/{row.id}/ouvrir")

    assert response.status_code == 302
    assert response.headers["Location"] == f"/portail/dossiers/{dossier.id}"
    session.refresh(row)
    assert row.read_at is not None
    assert badge(client.get("/notifications/").get_data(as_text=True)) is None


def test_staff_links_lead_to_the_back_office(client, session):
    dossier = factories.dossier("received")
    instructor = factories.user("instructor")
    services.assign(dossier, instructor, now=NOW)
    services.withdraw(dossier, factories.applicant_of(dossier.collectivite), "Projet reporté", now=NOW)
    session.commit()
    factories.log_in(client, instructor)
    row = session.scalar(select(Delivery).where(Delivery.user_id == instructor.id))
    assert "Dossier retiré par le demandeur" in client.get("/notifications/").get_data(as_text=True)
    response = client.post(f"/notifications/{row.id}/ouvrir")
    assert response.headers["Location"] == f"/instruction/dossiers/{dossier.id}"


def test_mark_read_and_mark_all_read(client, session):
    dossier = factories.dossier("incomplete")
    applicant = factories.applicant_of(dossier.collectivite)
    session.commit()
    factories.log_in(client, applicant)
    first, second = session.scalars(select(Delivery).where(Delivery.user_id == applicant.id)
                                    .order_by(Delivery.id)).all()

    assert client.post(f"/notifications/{first.id}/lue").status_code == 302
    session.refresh(first), session.refresh(second)
    assert first.read_at is not None and second.read_at is None
    assert badge(client.get("/notifications/").get_data(as_text=True)) == "1"

    assert client.post("/notifications/tout-lu").status_code == 302
    session.refresh(second)
    assert second.read_at is not None


def test_another_users_notification_is_not_found(client, session):
    dossier = factories.dossier("received")
    row = session.scalar(select(Delivery).where(
        Delivery.user_id == factories.applicant_of(dossier.collectivite).id))
    other = factories.user("instructor")
    session.commit()
    factories.log_in(client, other)
    assert client.post(f"/notifications/{row.id}/ouvrir").status_code == 404
    assert client.post(f"/notifications/{row.id}/lue").status_code == 404
    session.refresh(row)
    assert row.read_at is None


def test_empty_list_and_login_required(client, session):
    user = factories.user("finance")
    session.commit()
    assert client.get("/notifications/").status_code == 302  # to the login page
    factories.log_in(client, user)
    html = client.get("/notifications/").get_data(as_text=True)
    assert "Aucune notification pour le moment." in html and badge(html) is None
