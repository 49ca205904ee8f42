"""Administration of people: invitations by e-mail (through the outbox, signed, expiring, dead once
used), roles, deactivation (sessions end, history stays), reactivation, the audit of each action,
and refusal of every administration page to non-admins."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import select

from instruction.accounts import services as accounts
from instruction.accounts.models import User
from instruction.dossiers.models import AuditEvent
from instruction.notifications.emails import build_email
from instruction.notifications.models import OutboxMessage
from tests import factories

pytestmark = pytest.mark.usefixtures("fresh_limiter")
NEW_PASSWORD = "la fontaine du lavoir fleuri"

# Every administration route (GET pages and POST actions) with a valid argument.
ADMIN_GETS = ["/administration/", "/administration/personnes", "/administration/comptes",
              "/administration/journal"]
ADMIN_POSTS = ["/administration/personnes/inviter", "/administration/personnes/{id}/role",
               "/administration/personnes/{id}/desactiver", "/administration/personnes/{id}/reactiver",
               "/administration/personnes/{id}/renvoyer-invitation"]


def text(response) -> str:
    return re.sub(r"\s+", " ", html.unescape(response.get_data(as_text=True)))


def admin_events(action: str, subject_id: int) -> list[AuditEvent]:
    return list(factories.db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == action, AuditEvent.subject_kind == "user",
        AuditEvent.subject_id == subject_id).order_by(AuditEvent.id)))


def invitation_of(user: User) -> OutboxMessage:
    return factories.db.session.scalar(select(OutboxMessage).where(
        OutboxMessage.kind == "account_invitation", OutboxMessage.key.startswith(f"account:{user.id}:"))
        .order_by(OutboxMessage.id.desc()).limit(1))


@pytest.fixture
def admin(client, session):
    return factories.staff_logged_in(client, session, "admin")


@pytest.mark.parametrize("role", ["instructor", "finance", "applicant"])
def test_every_admin_route_is_refused_to_other_roles(client, session, role):
    target = factories.user("instructor")
    member = factories.user(role)
    session.commit()
    factories.log_in(client, member)
    for path in ADMIN_GETS:
        assert client.get(path).status_code == 403, path
    for path in ADMIN_POSTS:
        response = client.post(path.format(id=target.id), data={"role": "admin", "email": "x@exemple.fr",
                                                                 "full_name": "X"})
        assert response.status_code == 403, path
    session.expire_all()
    assert (target.role, target.active) == ("instructor", True)
    assert accounts.find_user_by_email("x@exemple.fr") is None


def test_anonymous_visitors_are_sent_to_the_login_page(client, session):
    for path in ADMIN_GETS:
        response = client.get(path)
        assert response.status_code == 302 and "/connexion" in response.headers["Location"], path


def test_admin_home_lists_the_sections(client, admin):
    page = text(client.get("/administration/"))
    for section in ("Personnes", "Comptes à valider", "Journal"):
        assert section in page


def test_an_invited_instructor_sets_a_password_from_the_e_mail_and_logs_in(client, session, admin, app):
    response = client.post("/administration/personnes/inviter", data={
        "full_name": "Inès Moreau", "email": "Ines.Moreau@bourgognefranchecomte.fr", "role": "instructor"})
    assert response.status_code == 302
    user = accounts.find_user_by_email("ines.moreau@bourgognefranchecomte.fr")
    assert (user.role, user.active, user.email_confirmed_at, user.approved_by_id) == (
        "instructor", True, None, admin.id)
    message = invitation_of(user)
    assert [d.email for d in message.deliveries] == ["ines.moreau@bourgognefranchecomte.fr"]
    assert message.context["invited_by"] == admin.full_name and message.context["role_label"] == "Instructeur"
    with app.test_request_context():
        mail = build_email(message, message.deliveries[0])
    body = mail.get_body(("plain",)).get_content()
    assert "Choisir mon mot de passe" in body and "7 jours" in body
    link = re.search(r"https?://\S+/invitation/\S+", body).group(0)
    path = re.sub(r"^https?://[^/]+", "", link)

    # Not usable before a password is chosen.
    invitee = app.test_client()
    refused = invitee.post("/connexion", data={"email": user.email, "password": NEW_PASSWORD})
    assert refused.status_code == 401

    assert invitee.get(path).status_code == 200
    weak = invitee.post(path, data={"password": "court", "confirm": "court"})
    assert weak.status_code == 400
    response = invitee.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302 and response.headers["Location"].endswith("/connexion")
    session.expire_all()
    assert user.email_confirmed_at is not None
    assert invitee.post("/connexion", data={"email": user.email, "password": NEW_PASSWORD}).status_code == 302
    assert "Inès Moreau · Instructeur" in text(invitee.get("/instruction/"))

    # The link died with the placeholder password.
    again = app.test_client().get(path)
    assert again.status_code == 400 and "déjà servi" in text(again)

    [event] = admin_events("invite", user.id)
    assert event.actor_id == admin.id and event.dossier_id is None
    assert event.after == {"role": "instructor", "active": True, "collectivite": None}


def test_an_invitation_expires_and_a_forged_one_is_refused(app, session):
    admin = factories.user("admin")
    with app.test_request_context():
        user = accounts.invite_user(email="f@exemple.fr", full_name="F", role="finance", invited_by=admin,
                                    now=factories.NOW)
    token = accounts.invitation_token(user)
    assert accounts.user_for_invitation(token) == user
    with pytest.raises(accounts.AccountError, match="expiré"):
        accounts.user_for_invitation(token, max_age=-1)
    with pytest.raises(accounts.AccountError, match="pas valable"):
        accounts.user_for_invitation(token[:-3] + "abc")
    reset = accounts.reset_token(user)  # a link of another kind is not an invitation
    with pytest.raises(accounts.AccountError):
        accounts.user_for_invitation(reset)


def test_inviting_an_existing_address_or_an_applicant_role_is_refused(client, session, admin):
    existing = factories.user("finance")
    session.commit()
    response = client.post("/administration/personnes/inviter", data={
        "full_name": "Double", "email": existing.email.upper(), "role": "instructor"})
    assert response.status_code == 400 and "Un compte existe déjà" in text(response)
    response = client.post("/administration/personnes/inviter", data={
        "full_name": "Demandeur", "email": "dem@exemple.fr", "role": "applicant"})
    assert response.status_code == 400
    assert accounts.find_user_by_email("dem@exemple.fr") is None


def test_resending_an_invitation_sends_a_new_link_only_while_pending(client, session, admin):
    client.post("/administration/personnes/inviter", data={
        "full_name": "Paul", "email": "paul@exemple.fr", "role": "finance"})
    user = accounts.find_user_by_email("paul@exemple.fr")
    assert client.post(f"/administration/personnes/{user.id}/renvoyer-invitation").status_code == 302
    keys = [m.key for m in session.scalars(select(OutboxMessage).where(
        OutboxMessage.kind == "account_invitation", OutboxMessage.key.startswith(f"account:{user.id}:")))]
    assert sorted(keys) == [f"account:{user.id}:invite:1", f"account:{user.id}:invite:2"]
    assert len(admin_events("resend_invitation", user.id)) == 1
    confirmed = factories.user("instructor")
    session.commit()
    response = client.post(f"/administration/personnes/{confirmed.id}/renvoyer-invitation")
    assert response.status_code == 400 and "déjà choisi son mot de passe" in text(response)


def test_changing_a_role_is_audited_and_an_admin_cannot_change_their_own(client, session, admin):
    member = factories.user("instructor")
    session.commit()
    response = client.post(f"/administration/personnes/{member.id}/role", data={"role": "finance"})
    assert response.status_code == 302
    session.expire_all()
    assert member.role == "finance"
    [event] = admin_events("change_role", member.id)
    assert (event.before["role"], event.after["role"], event.actor_id) == ("instructor", "finance", admin.id)

    own = client.post(f"/administration/personnes/{admin.id}/role", data={"role": "instructor"})
    assert own.status_code == 403
    session.expire_all()
    assert admin.role == "admin"
    applicant = factories.user("applicant")
    session.commit()
    assert client.post(f"/administration/personnes/{applicant.id}/role",
                       data={"role": "admin"}).status_code == 400
    assert client.post(f"/administration/personnes/{member.id}/role",
                       data={"role": "superuser"}).status_code == 400
    session.expire_all()
    assert (applicant.role, member.role) == ("applicant", "finance")


def test_deactivation_ends_the_sessions_keeps_the_history_and_reactivation_restores(app, session):
    admin = factories.user("admin")
    dossier = factories.dossier("received")
    instructor = factories.user("instructor")
    from instruction.dossiers import services as dossiers

    dossiers.assign(dossier, instructor, now=factories.NOW)
    session.commit()
    admin_client, member_client = app.test_client(), app.test_client()
    factories.log_in(admin_client, admin)
    factories.log_in(member_client, instructor)
    assert member_client.get("/instruction/").status_code == 200

    response = admin_client.post(f"/administration/personnes/{instructor.id}/desactiver",
                                 data={"reason": "Départ du service"})
    assert response.status_code == 302
    after = member_client.get("/instruction/")
    assert after.status_code == 302 and "/connexion" in after.headers["Location"]
    assert member_client.post("/connexion", data={"email": instructor.email,
                                                   "password": factories.PASSWORD}).status_code == 401
    session.expire_all()
    assert instructor.active is False
    assert [e.action for e in dossier.events if e.actor_id == instructor.id] == ["assign"]
    assert dossier.assigned_to_id == instructor.id
    [event] = admin_events("deactivate", instructor.id)
    assert (event.before["active"], event.after["active"], event.reason) == (True, False, "Départ du service")
    people = text(admin_client.get("/administration/personnes?statut=desactive"))
    assert instructor.email in people and "désactivé" in people

    assert admin_client.post(f"/administration/personnes/{admin.id}/desactiver").status_code == 403
    assert admin_client.post(f"/administration/personnes/{instructor.id}/reactiver").status_code == 302
    assert member_client.post("/connexion", data={"email": instructor.email,
                                                   "password": factories.PASSWORD}).status_code == 302
    assert len(admin_events("reactivate", instructor.id)) == 1


def test_a_wrongly_refused_applicant_is_reactivated_approved_and_told(client, session, admin):
    applicant = factories.user("applicant", approved=False)
    session.commit()
    response = client.post(f"/administration/comptes/{applicant.id}/refuser", data={"reason": "Inconnu"})
    assert response.status_code == 302
    session.expire_all()
    assert applicant.active is False
    [refused] = admin_events("refuse_account", applicant.id)
    assert refused.reason == "Inconnu" and refused.after == {"approved": False, "active": False}

    assert client.post(f"/administration/personnes/{applicant.id}/reactiver").status_code == 302
    session.expire_all()
    assert applicant.active and applicant.approved_by_id == admin.id
    told = session.scalar(select(OutboxMessage).where(OutboxMessage.key == f"account:{applicant.id}:approved"))
    assert [d.email for d in told.deliveries] == [applicant.email]
    client.post("/deconnexion")
    factories.log_in(client, applicant)


def test_people_page_shows_last_login_and_filters(client, session, admin):
    never = factories.user("finance", full_name="Zoé Jamais")
    session.commit()
    page = text(client.get("/administration/personnes?role=finance"))
    assert "Zoé Jamais" in page and "jamais" in page and admin.email not in page
    page = text(client.get("/administration/personnes?q=zoé"))
    assert "Zoé Jamais" in page and 'people-total">1<' in page
    mine = text(client.get("/administration/personnes?role=admin"))
    assert "votre compte" in mine
    assert never.last_login_at is None


def test_the_approval_page_warns_when_the_address_is_not_confirmed(client, session, admin):
    factories.user("applicant", approved=False, confirmed=False, full_name="Non Confirmé")
    factories.user("applicant", approved=False, confirmed=True, full_name="Bien Confirmé")
    session.commit()
    response = client.get("/administration/comptes")
    rows = response.get_data(as_text=True).split('data-account="')[1:]
    unconfirmed = next(r for r in rows if "Non Confirmé" in r)
    confirmed = next(r for r in rows if "Bien Confirmé" in r)
    assert 'data-testid="unconfirmed-warning"' in unconfirmed
    assert 'data-testid="unconfirmed-warning"' not in confirmed


def test_approving_from_the_admin_page_is_audited(client, session, admin):
    applicant = factories.user("applicant", approved=False)
    session.commit()
    assert client.post(f"/administration/comptes/{applicant.id}/valider").status_code == 302
    [event] = admin_events("approve_account", applicant.id)
    assert event.before == {"approved": False, "active": True} and event.after == {"approved": True, "active": True}


def test_audit_page_lists_admin_actions_with_filters(client, session, admin):
    a = factories.user("instructor", full_name="Alice Audit")
    b = factories.user("instructor", full_name="Bruno Audit")
    session.commit()
    client.post(f"/administration/personnes/{a.id}/role", data={"role": "finance"})
    client.post(f"/administration/personnes/{b.id}/desactiver", data={"reason": ""})
    page = text(client.get("/administration/journal"))
    assert "Alice Audit" in page and "Bruno Audit" in page
    assert "rôle : Instructeur" in page and "rôle : Finances" in page and "actif : non" in page
    only_roles = text(client.get("/administration/journal?action=change_role"))
    assert "Alice Audit" in only_roles and "Bruno Audit" not in only_roles
    by_name = text(client.get("/administration/journal?q=bruno"))
    assert "Bruno Audit" in by_name and "Alice Audit" not in by_name
    future = text(client.get("/administration/journal?du=2999-01-01"))
    assert "Alice Audit" not in future
    assert "Alice Audit" in text(client.get(f"/administration/journal?auteur={admin.id}"))
    assert client.get("/administration/journal?du=pas-une-date&auteur=abc").status_code == 200
