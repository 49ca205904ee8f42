"""The service's identity and the texts of the legal pages, edited by an admin, audited."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import select

from instruction.dossiers.models import AuditEvent
from instruction.settings.services import current_identity, legal_texts
from tests import factories

pytestmark = pytest.mark.usefixtures("fresh_limiter")


def text(response) -> str:
    return re.sub(r"\s+", " ", html.unescape(response.get_data(as_text=True)))


def form_of(**changes) -> dict:
    data = {**current_identity().as_dict(), **legal_texts()}
    data.update(changes)
    return data


def test_the_identity_page_shows_the_defaults_and_saves_changes_with_an_audit_event(client, session):
    admin = factories.staff_logged_in(client, session, "admin")
    page = text(client.get("/administration/identite"))
    assert "Tribunal administratif de Besançon" in page and "03 81 61 61 61" in page
    response = client.post("/administration/identite", data=form_of(
        telephone="03 80 44 33 00", signatory_name="Jeanne Martin",
        legal_notice="Éditeur : Région Bourgogne-Franche-Comté.\n\nHébergeur : la Région."))
    assert response.status_code == 302
    session.expire_all()
    identity = current_identity()
    assert (identity.telephone, identity.signatory_name) == ("03 80 44 33 00", "Jeanne Martin")
    assert identity.tribunal_name == "Tribunal administratif de Besançon"  # untouched
    assert legal_texts() == {"legal_notice": "Éditeur : Région Bourgogne-Franche-Comté.\n\nHébergeur : la Région.",
                             "privacy_notice": "", "accessibility_statement": ""}
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "update_settings")).all()
    assert event.actor_id == admin.id
    assert event.before == {"Téléphone": "03 81 61 61 61", "Nom du signataire": "Marie-Guite Dufay",
                            "Mentions légales": "0 caractères"}
    assert event.after == {"Téléphone": "03 80 44 33 00", "Nom du signataire": "Jeanne Martin",
                           "Mentions légales": "65 caractères"}  # 42 + 2 line breaks + 21
    # Saving again without a change writes no event.
    assert client.post("/administration/identite", data=form_of()).status_code == 302
    assert len(session.scalars(select(AuditEvent).where(AuditEvent.action == "update_settings")).all()) == 1


def test_a_missing_field_is_refused_in_french_and_nothing_is_saved(client, session):
    factories.staff_logged_in(client, session, "admin")
    response = client.post("/administration/identite", data=form_of(telephone="  ", email="x" * 300))
    assert response.status_code == 400
    page = text(response)
    assert "Téléphone : ce champ est obligatoire." in page and "254 caractères au plus" in page
    assert current_identity().telephone == "03 81 61 61 61"


def test_the_identity_page_is_refused_to_other_roles(client, session):
    factories.staff_logged_in(client, session, "instructor")
    assert client.get("/administration/identite").status_code == 403
    assert client.post("/administration/identite", data=form_of(telephone="01")).status_code == 403
    assert current_identity().telephone == "03 81 61 61 61"
