"""Private notes, labels (and the admins' page for them), assignment, bulk actions, following,
what changed since I looked, and the applicant's side (draft deletion, the home banner), with the
roles that may and may not see or do each thing. A note or a label never reaches an applicant."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from instruction.dossiers.models import AuditEvent, Dossier, DossierFollower
from instruction.dossiers.team import team_of
from instruction.notifications.models import OutboxMessage
from instruction.teamwork import services as team
from instruction.teamwork.models import DossierLabel, DossierNote, Label
from tests import factories
from tests.factories import NOW

SOON = NOW + timedelta(minutes=30)
MAX = 10 * 1024 * 1024


@pytest.fixture
def clock(monkeypatch):
    state = {"now": SOON}
    monkeypatch.setattr("instruction.clock.now", lambda: state["now"])
    return state


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def label(name="Prêt pour la commission", colour="success") -> Label:
    found = factories.db.session.scalar(select(Label).where(Label.name == name))
    return found or team.create_label(factories.staff("admin"), name, colour, now=NOW)


def received(session, **kw):
    dossier = factories.dossier("received", aid=2, **kw)
    session.commit()
    return dossier


# --- notes ---------------------------------------------------------------------------------------


def test_an_instructor_writes_a_private_note_audited_and_never_shown_to_the_applicant(client, session, clock):
    dossier = received(session)
    agent = factories.applicant_of(dossier.collectivite)
    instructor = factories.staff_logged_in(client, session)
    response = client.post(f"/instruction/dossiers/{dossier.id}/notes",
                           data={"body": "Appeler le maire :\nle devis semble daté de 2019."})
    assert response.status_code == 302
    [note] = session.scalars(select(DossierNote).where(DossierNote.dossier_id == dossier.id)).all()
    assert (note.body, note.author_id, note.created_at) == (
        "Appeler le maire :\nle devis semble daté de 2019.", instructor.id, SOON)
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "note_added"))
    assert (event.dossier_id, event.actor_id, event.reason, event.from_state, event.to_state) == (
        dossier.id, instructor.id, f"Note n°{note.id}", "received", "received")
    page = text(client.get(f"/instruction/dossiers/{dossier.id}"))
    assert "Appeler le maire :\nle devis semble daté de 2019." in page and "Note privée" in page

    client.post("/deconnexion")
    factories.log_in(client, agent)
    portal = text(client.get(f"/portail/dossiers/{dossier.id}"))
    assert "Appeler le maire" not in portal and "Note privée" not in portal and "Note n°" not in portal
    assert "Appeler le maire" not in text(client.get("/notifications/"))
    assert session.scalar(select(func.count()).select_from(OutboxMessage)
                          .where(OutboxMessage.dossier_id == dossier.id,
                                 OutboxMessage.context.cast(factories.db.String).contains("Appeler"))) == 0


def test_an_empty_note_is_a_400_and_an_applicant_cannot_post_one(client, session, clock):
    dossier = received(session)
    factories.staff_logged_in(client, session)
    response = client.post(f"/instruction/dossiers/{dossier.id}/notes", data={"body": "  "})
    assert response.status_code == 400 and "La note est vide." in text(response)
    client.post("/deconnexion")
    factories.log_in(client, factories.applicant_of(dossier.collectivite))
    assert client.post(f"/instruction/dossiers/{dossier.id}/notes", data={"body": "x"}).status_code == 403
    assert session.scalar(select(func.count()).select_from(DossierNote)) == 0


# --- labels --------------------------------------------------------------------------------------


def test_admins_manage_labels_and_no_one_else_may(client, session, clock):
    admin = factories.staff_logged_in(client, session, "admin")
    assert client.get("/administration/etiquettes/").status_code == 200
    response = client.post("/administration/etiquettes/", data={"name": "  Prêt   pour la commission ",
                                                                 "colour": "success"})
    assert response.status_code == 302
    created = session.scalar(select(Label))
    assert (created.name, created.colour) == ("Prêt pour la commission", "success")
    duplicate = client.post("/administration/etiquettes/", data={"name": "prêt pour la COMMISSION",
                                                                  "colour": "danger"})
    assert duplicate.status_code == 409 and "existe déjà" in text(duplicate)
    bad = client.post("/administration/etiquettes/", data={"name": "Urgent", "colour": "fuchsia"})
    assert bad.status_code == 400 and "Choisissez une couleur dans la liste." in text(bad)
    assert client.post(f"/administration/etiquettes/{created.id}",
                       data={"name": "Commission de mars", "colour": "warning"}).status_code == 302
    session.expire_all()
    assert (session.get(Label, created.id).name, session.get(Label, created.id).colour) == (
        "Commission de mars", "warning")
    page = text(client.get("/administration/etiquettes/"))
    assert 'data-label="Commission de mars"' in page
    assert admin.role == "admin"

    for role in ("instructor", "finance"):
        client.post("/deconnexion")
        factories.staff_logged_in(client, session, role)
        assert client.get("/administration/etiquettes/").status_code == 403
        assert client.post("/administration/etiquettes/", data={"name": "X", "colour": "dark"}).status_code == 403
        assert client.post(f"/administration/etiquettes/{created.id}/supprimer").status_code == 403
    client.post("/deconnexion")
    factories.log_in(client, factories.user("applicant"))
    assert client.get("/administration/etiquettes/").status_code == 403
    client.post("/deconnexion")
    assert "/connexion" in client.get("/administration/etiquettes/").headers["Location"]
    assert session.scalar(select(func.count()).select_from(Label)) == 1


def test_deleting_a_label_takes_it_off_every_dossier(client, session, clock):
    dossier = received(session)
    ready = label()
    team.add_label(dossier, ready, factories.staff("instructor"), now=NOW)
    session.commit()
    name, label_id = ready.name, ready.id
    factories.staff_logged_in(client, session, "admin")
    shown = html.unescape(client.get("/administration/etiquettes/").get_data(as_text=True))
    step = re.search(rf'<details class="confirm-step" data-testid="delete-label-{label_id}">(.*?)</details>', shown, re.S)
    assert step is not None and f"Supprimer l'étiquette « {name} » et la retirer de tous les dossiers ?" in step.group(1)
    assert "data-confirm" not in shown
    assert client.post(f"/administration/etiquettes/{label_id}/supprimer").status_code == 302
    assert session.scalar(select(func.count()).select_from(DossierLabel)) == 0
    assert session.scalar(select(func.count()).select_from(Label)) == 0
    # The history keeps that it was put on.
    assert session.scalar(select(AuditEvent.reason).where(AuditEvent.action == "label_added")) == name


def test_instructors_label_a_dossier_the_queue_filters_by_label_and_applicants_never_see_it(client, session, clock):
    dossier, other = received(session), received(session)
    ready = label()
    session.commit()
    instructor = factories.staff_logged_in(client, session)
    assert client.post(f"/instruction/dossiers/{dossier.id}/etiquettes", data={"label_id": ready.id}).status_code == 302
    assert client.post(f"/instruction/dossiers/{dossier.id}/etiquettes", data={"label_id": ready.id}).status_code == 302
    assert session.scalar(select(func.count()).select_from(DossierLabel)) == 1  # twice is once
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "label_added"))
    assert (event.actor_id, event.reason) == (instructor.id, "Prêt pour la commission")

    queue = text(client.get(f"/instruction/?onglet=tous&etiquette={ready.id}"))
    assert dossier.reference in queue and other.reference not in queue
    assert 'data-label="Prêt pour la commission"' in queue
    unknown = text(client.get("/instruction/?onglet=tous&etiquette=999999"))
    assert "Étiquette « 999999 » inconnue : filtre ignoré." in unknown and other.reference in unknown

    client.post("/deconnexion")
    agent = factories.applicant_of(dossier.collectivite)
    factories.log_in(client, agent)
    for path in (f"/portail/dossiers/{dossier.id}", "/portail/", "/notifications/"):
        body = text(client.get(path))
        assert "Prêt pour la commission" not in body and "Étiquette" not in body, path
    assert client.post(f"/instruction/dossiers/{dossier.id}/etiquettes", data={"label_id": ready.id}).status_code == 403

    client.post("/deconnexion")
    factories.log_in(client, instructor)
    assert client.post(f"/instruction/dossiers/{dossier.id}/etiquettes/{ready.id}/retirer").status_code == 302
    assert session.scalar(select(func.count()).select_from(DossierLabel)) == 0
    assert session.scalar(select(AuditEvent.reason).where(AuditEvent.action == "label_removed")) == ready.name


def test_finance_may_read_but_not_label_or_assign(client, session, clock):
    dossier = received(session)
    ready = label()
    session.commit()
    factories.staff_logged_in(client, session, "finance")
    assert client.get(f"/instruction/dossiers/{dossier.id}").status_code == 200
    assert client.post(f"/instruction/dossiers/{dossier.id}/etiquettes", data={"label_id": ready.id}).status_code == 403
    someone = factories.user("instructor")
    session.commit()
    assert client.post(f"/instruction/dossiers/{dossier.id}/attribuer", data={"assignee_id": someone.id}).status_code == 403
    assert client.post("/instruction/lot", data={"dossiers": [dossier.id], "operation": f"assign:{someone.id}"}).status_code == 403
    session.expire_all()
    assert session.get(Dossier, dossier.id).assigned_to_id is None


# --- assignment, bulk, following ------------------------------------------------------------------


def test_assign_to_a_colleague_audited_and_refused_for_non_instructors(client, session, clock):
    dossier = received(session)
    colleague = factories.user("instructor", full_name="Luc Petit")
    finance = factories.user("finance")
    session.commit()
    me = factories.staff_logged_in(client, session)
    assert client.post(f"/instruction/dossiers/{dossier.id}/attribuer", data={"assignee_id": colleague.id}).status_code == 302
    session.expire_all()
    assert session.get(Dossier, dossier.id).assigned_to_id == colleague.id
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "assign"))
    assert (event.actor_id, event.reason) == (me.id, f"Attribué à l'instructeur n°{colleague.id}")
    response = client.post(f"/instruction/dossiers/{dossier.id}/attribuer", data={"assignee_id": finance.id})
    assert response.status_code == 400 and "Choisissez un instructeur de la liste." in text(response)
    session.expire_all()
    assert session.get(Dossier, dossier.id).assigned_to_id == colleague.id


def test_bulk_assign_and_label_from_the_queue_all_or_nothing(client, session, clock):
    a, b = received(session), received(session)
    draft = factories.dossier("draft", aid=2)
    ready = label()
    colleague = factories.user("instructor", full_name="Luc Petit")
    session.commit()
    factories.staff_logged_in(client, session)
    response = client.post("/instruction/lot", data={"dossiers": [a.id, b.id], "operation": f"assign:{colleague.id}",
                                                     "retour": "/instruction/?onglet=tous"})
    assert response.status_code == 302 and response.headers["Location"] == "/instruction/?onglet=tous"
    session.expire_all()
    assert [session.get(Dossier, i).assigned_to_id for i in (a.id, b.id)] == [colleague.id, colleague.id]
    assert client.post("/instruction/lot", data={"dossiers": [a.id, b.id], "operation": f"label:{ready.id}"}).status_code == 302
    assert session.scalar(select(func.count()).select_from(DossierLabel)) == 2
    # A draft among them (staff may not see it): nothing at all is done.
    other = label("Urgent", "danger")
    session.commit()
    refused = client.post("/instruction/lot", data={"dossiers": [a.id, draft.id], "operation": f"label:{other.id}"})
    assert refused.status_code == 404 and "rien n'a été modifié" in text(refused)
    assert session.scalar(select(func.count()).select_from(DossierLabel).where(DossierLabel.label_id == other.id)) == 0
    assert client.post("/instruction/lot", data={"dossiers": [], "operation": f"label:{other.id}"}).status_code == 400
    assert client.post("/instruction/lot", data={"dossiers": [a.id], "operation": "delete:1"}).status_code == 400


def test_follow_and_unfollow(client, session, clock):
    dossier = received(session)
    me = factories.staff_logged_in(client, session, "finance")  # any staff member may follow
    assert client.post(f"/instruction/dossiers/{dossier.id}/suivre").status_code == 302
    assert client.post(f"/instruction/dossiers/{dossier.id}/suivre").status_code == 302  # twice is once
    assert session.scalar(select(func.count()).select_from(DossierFollower)) == 1
    assert "Ne plus suivre ce dossier" in text(client.get(f"/instruction/dossiers/{dossier.id}"))
    assert [u.id for u in team_of(dossier)] == [me.id]
    assert client.post(f"/instruction/dossiers/{dossier.id}/ne-plus-suivre").status_code == 302
    assert session.scalar(select(func.count()).select_from(DossierFollower)) == 0
    client.post("/deconnexion")
    factories.log_in(client, factories.applicant_of(dossier.collectivite))
    assert client.post(f"/instruction/dossiers/{dossier.id}/suivre").status_code == 403


# --- what changed since I looked -----------------------------------------------------------------


def test_the_queue_marks_what_changed_since_each_person_last_looked(client, session, clock):
    dossier, quiet = received(session), received(session)
    agent = factories.applicant_of(dossier.collectivite)
    me, colleague = factories.user("instructor"), factories.user("instructor")
    session.commit()
    factories.log_in(client, me)
    client.get(f"/instruction/dossiers/{dossier.id}")  # seen at SOON
    clock["now"] = SOON + timedelta(minutes=10)
    team.post_message(dossier, agent, "Une question", [("devis.pdf", factories.pdf_bytes())], max_bytes=MAX,
                      now=SOON + timedelta(minutes=5))
    session.commit()

    def row(page, d):
        start = page.index(f'data-dossier="{d.id}"')
        return page[start:page.index("</tr>", start)]

    queue = text(client.get("/instruction/?onglet=tous"))
    assert "Modifié : 1 nouveau message, 1 nouvelle pièce" in row(queue, dossier)
    assert "Modifié" not in row(queue, quiet)
    only_changed = text(client.get("/instruction/?onglet=tous&modifies=1"))
    assert dossier.reference in only_changed and quiet.reference not in only_changed

    client.get(f"/instruction/dossiers/{dossier.id}")
    assert "Modifié" not in row(text(client.get("/instruction/?onglet=tous")), dossier)
    # Each person has their own "last seen": the colleague never opened it.
    client.post("/deconnexion")
    factories.log_in(client, colleague)
    assert "Modifié : 1 nouveau message, 1 nouvelle pièce" in row(text(client.get("/instruction/?onglet=tous")), dossier)


def test_completed_and_withdrawn_are_changes(session):
    from instruction.dossiers import services as dossiers

    dossier = received(session)
    agent = factories.applicant_of(dossier.collectivite)
    me = factories.user("instructor")
    team.mark_seen(dossier, me, now=SOON)
    dossiers.request_documents(dossier, me, "La facture.", now=SOON + timedelta(minutes=1))
    team.mark_seen(dossier, me, now=SOON + timedelta(minutes=2))
    assert team.changes_since_seen(me.id, [dossier.id]) == {}
    dossiers.resubmit(dossier, agent, "", now=SOON + timedelta(minutes=3))
    changes = team.changes_since_seen(me.id, [dossier.id])[dossier.id]
    assert set(changes) == {"resubmit"}
    dossiers.withdraw(dossier, agent, "Abandon", now=SOON + timedelta(minutes=4))
    assert set(team.changes_since_seen(me.id, [dossier.id])[dossier.id]) == {"resubmit", "withdraw"}
    team.mark_seen(dossier, me, now=SOON + timedelta(minutes=5))
    assert team.changes_since_seen(me.id, [dossier.id]) == {}


# --- the applicant's side ------------------------------------------------------------------------


def test_an_agent_deletes_a_draft_but_never_a_submitted_dossier(client, session, clock):
    draft = factories.dossier("draft", aid=2)
    submitted = received(session)
    agent = factories.applicant_of(draft.collectivite)
    stranger = factories.user("applicant", collectivite=factories.commune("21001"))
    session.commit()
    factories.log_in(client, stranger)
    assert client.post(f"/portail/dossiers/{draft.id}/supprimer").status_code == 404
    client.post("/deconnexion")
    factories.staff_logged_in(client, session, "admin")
    assert client.post(f"/portail/dossiers/{draft.id}/supprimer").status_code == 403
    client.post("/deconnexion")
    factories.log_in(client, agent)
    refused = client.post(f"/portail/dossiers/{submitted.id}/supprimer")
    assert refused.status_code == 409 and "Seul un brouillon peut être supprimé" in text(refused)
    draft_id = draft.id
    assert client.post(f"/portail/dossiers/{draft_id}/supprimer").status_code == 302
    session.expire_all()
    gone = session.get(Dossier, draft_id)
    # Emptied and hidden; the row stays for the append-only audit trail, which says who and when.
    assert (gone.discarded_at, gone.lines, gone.documents) == (SOON, [], [])
    assert [(e.action, e.actor_id, e.at) for e in gone.events][-1] == ("discard", agent.id, SOON)
    assert client.get(f"/portail/dossiers/{draft_id}").status_code == 404
    assert draft.reference not in text(client.get("/portail/"))
    assert session.get(Dossier, submitted.id).discarded_at is None
    again = client.post(f"/portail/dossiers/{draft_id}/supprimer")  # a double click
    assert again.status_code == 302 and again.headers["Location"].endswith("/portail/")


def test_the_home_banner_lists_what_waits_for_the_agent(client, session, clock):
    asked = factories.dossier("incomplete", aid=2)
    written = received(session)
    quiet = received(session)
    agent = factories.applicant_of(asked.collectivite)
    instructor = factories.staff("instructor")
    team.post_message(written, instructor, "Une précision ?", [], max_bytes=MAX, now=SOON)
    team.post_message(written, instructor, "Et une autre.", [], max_bytes=MAX, now=SOON)
    session.commit()
    factories.log_in(client, agent)
    home = text(client.get("/portail/"))
    banner = " ".join(home[home.index('data-testid="waiting-banner"'):].split())
    banner = banner[:banner.index("</section>")]
    assert "2 dossiers attendent votre réponse" in banner
    assert f"({asked.reference})</a> : des pièces vous sont demandées" in banner
    assert f"({written.reference})</a> : la Région vous a écrit (2 messages)" in banner
    assert quiet.reference not in banner
    client.get(f"/portail/dossiers/{written.id}")  # read
    home = text(client.get("/portail/"))
    assert "Un dossier attend votre réponse" in home and f"({written.reference})" not in home
