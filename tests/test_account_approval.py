"""Approval of applicant accounts: a registered applicant sees nothing of their collectivité until a
Region admin, or an approved agent of the same collectivité, approves the account; a refusal
deactivates it. E-mails go through the outbox, once per event."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade
from sqlalchemy import select, update

from instruction.accounts import services
from instruction.accounts.models import User
from instruction.accounts.services import (
    AlreadyDecided,
    NotAllowed,
    approve_account,
    find_user_by_email,
    may_decide,
    refuse_account,
)
from instruction.extensions import db
from instruction.notifications import kinds
from instruction.notifications.emails import build_email
from instruction.notifications.models import OutboxMessage
from tests import factories
from tests.conftest import make_test_app

GOOD_PASSWORD = "le lavoir de la place fleurie"
NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


pytestmark = pytest.mark.usefixtures("fresh_limiter")


def text(response) -> str:
    """The page as read: entities decoded, runs of white space (line breaks in templates) folded."""
    return re.sub(r"\s+", " ", html.unescape(response.get_data(as_text=True)))


def path_of(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def messages(kind: str, user: User) -> list[OutboxMessage]:
    return list(db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.kind == kind,
                                    OutboxMessage.key.startswith(f"account:{user.id}:"))
        .order_by(OutboxMessage.id)))


def recipients(message: OutboxMessage) -> set[str]:
    return {d.email for d in message.deliveries}


def register(client, collectivite, email="secretariat@agencourt.fr", full_name="Claire Martin"):
    response = client.post("/inscription", data={
        "collectivite_id": str(collectivite.id), "full_name": full_name, "email": email,
        "password": GOOD_PASSWORD, "confirm": GOOD_PASSWORD})
    assert response.status_code == 302, text(response)[:2000]
    return find_user_by_email(email)


def confirm(client, user):
    [message] = messages("account_confirmation", user)
    assert client.get(path_of(message.context["url"])).status_code == 302


def login(client, email, password=GOOD_PASSWORD):
    return client.post("/connexion", data={"email": email, "password": password})


def pending(**kw) -> User:
    """An applicant account waiting for approval, as registration leaves it."""
    return factories.user("applicant", approved=False, **kw)


# --- the whole path ------------------------------------------------------------------------------


def test_register_confirm_refused_until_an_admin_approves(client, session, app):
    agencourt = factories.commune("21001")
    admin = factories.user("admin", full_name="Nadia Roux")
    session.commit()

    user = register(client, agencourt)
    assert user.approved_at is None and user.approved_by_id is None and user.active
    assert "doit ensuite être validé" in text(client.get("/connexion"))
    confirm(client, user)
    assert "doit encore être validé" in text(client.get("/connexion"))
    session.refresh(user)
    assert user.email_confirmed_at is not None

    # Confirmed but not approved: a 403 in French that says who validates and that an e-mail follows.
    response = login(client, user.email)
    page = text(response)
    assert response.status_code == 403
    assert "Votre compte n'a pas encore été validé" in page
    assert "la Région, ou un agent de cette collectivité dont le compte est déjà validé" in page
    assert "Agencourt" in page and "Vous recevrez un message électronique" in page
    assert client.get("/portail/").status_code == 302  # still anonymous
    session.refresh(user)
    assert user.last_login_at is None

    # The admin sees the account on the approval page, with its collectivité, and approves it.
    factories.log_in(client, admin)
    home = text(client.get("/"))
    assert "Comptes à valider (1)" in home
    page = text(client.get("/administration/comptes"))
    row = page[page.index(f'data-account="{user.id}"'):]
    row = row[:row.index("</tr>")]
    for expected in ("Claire Martin", "secretariat@agencourt.fr", "Agencourt", "Commune",
                     "code INSEE 21001", "confirmée", "aucun compte validé"):
        assert expected in row, expected
    assert "non confirmée" not in row
    response = client.post(f"/administration/comptes/{user.id}/valider")
    assert response.status_code == 302 and response.headers["Location"].startswith("/administration/comptes")
    page = text(client.get(response.headers["Location"]))
    assert "Le compte de Claire Martin" in page and "est validé" in page
    assert "Aucun compte n'attend de validation" in page
    session.refresh(user)
    assert user.approved_at is not None and user.approved_by_id == admin.id
    assert "Comptes à valider (0)" in text(client.get("/"))
    client.post("/deconnexion")

    response = login(client, user.email)
    assert response.status_code == 302 and response.headers["Location"] == "/portail/"
    assert "Agencourt" in text(client.get("/portail/"))
    [message] = messages("account_approved", user)
    assert message.key == f"account:{user.id}:approved" and recipients(message) == {user.email}
    assert message.context["approved_by"] == "la Région Bourgogne-Franche-Comté"
    assert message.context["email_confirmed"] is True
    assert message.context["url"] == app.config["BASE_URL"] + "/connexion"


def test_an_unconfirmed_and_unapproved_account_is_told_both(client, session):
    user = register(client, factories.commune("21001"))
    response = login(client, user.email)
    page = text(response)
    assert response.status_code == 403
    assert "n'est pas encore confirmée" in page and "Renvoyer le lien" in page
    assert "devra encore être validé par la Région" in page


def test_accounts_created_by_commands_and_staff_are_approved(session):
    for role in ("instructor", "finance", "admin", "applicant"):
        user = factories.user(role)
        assert user.approved_at is not None and user.approved_by_id is None
    assert factories.user("applicant", approved=False).approved_at is None


# --- notifications -------------------------------------------------------------------------------


def test_registration_tells_the_admins_and_the_approved_agents_once(client, session, app):
    agencourt, other = factories.commune("21001"), factories.commune("21002")
    admin1, admin2 = factories.user("admin"), factories.user("admin")
    retired = factories.user("admin")
    retired.active = False
    factories.user("instructor")
    factories.user("finance")
    colleague = factories.user("applicant", collectivite=agencourt)
    factories.user("applicant", collectivite=agencourt, confirmed=False)  # cannot log in: not told
    waiting = pending(collectivite=agencourt)  # not approved: not told
    factories.user("applicant", collectivite=other)  # another commune: not told
    session.commit()

    user = register(client, agencourt)

    region, collectivite = messages("account_pending", user)
    assert region.key == f"account:{user.id}:pending:region"
    assert recipients(region) == {admin1.email, admin2.email}
    assert region.context["url"] == app.config["BASE_URL"] + "/administration/comptes"
    assert collectivite.key == f"account:{user.id}:pending:collectivite"
    assert recipients(collectivite) == {colleague.email}
    assert collectivite.context["url"] == app.config["BASE_URL"] + "/portail/#demandes-acces"
    for message in (region, collectivite):
        assert message.dossier_id is None
        assert message.context["applicant_name"] == "Claire Martin"
        assert message.context["applicant_email"] == "secretariat@agencourt.fr"
        assert (message.context["collectivite"], message.context["collectivite_code"]) == ("Agencourt", "21001")
    assert waiting.email not in recipients(collectivite) | recipients(region)

    # Resending the confirmation link does not tell the approvers again.
    client.post("/inscription/renvoyer", data={"email": user.email})
    assert len(messages("account_pending", user)) == 2

    # The decision is told once to the applicant, however often it is clicked.
    factories.log_in(client, admin1)
    for _ in range(2):
        assert client.post(f"/administration/comptes/{user.id}/valider").status_code == 302
    assert "déjà validé" in text(client.get("/administration/comptes"))
    [approved] = messages("account_approved", user)
    assert recipients(approved) == {user.email}
    assert messages("account_refused", user) == []


def test_a_collectivite_without_approved_agents_only_tells_the_region(client, session):
    admin = factories.user("admin")
    session.commit()
    user = register(client, factories.epci("200000925"), email="dgs@plaine.fr")
    [region] = messages("account_pending", user)
    assert region.key.endswith(":pending:region") and recipients(region) == {admin.email}


# --- approval by an agent of the same collectivité ------------------------------------------------


def test_an_approved_agent_approves_a_colleague_from_the_portal(client, session):
    agencourt = factories.commune("21001")
    colleague = factories.user("applicant", collectivite=agencourt, full_name="Paul Bernard")
    session.commit()
    user = register(client, agencourt)

    factories.log_in(client, colleague)
    page = text(client.get("/portail/"))
    assert "Demandes d'accès à votre collectivité" in page
    assert "Claire Martin" in page and "secretariat@agencourt.fr" in page
    assert "adresse électronique pas encore confirmée" in page
    response = client.post(f"/portail/demandes-d-acces/{user.id}/valider")
    assert response.status_code == 302 and response.headers["Location"] == "/portail/#demandes-acces"
    page = text(client.get("/portail/"))
    assert "Le compte de Claire Martin" in page and "Demandes d'accès à votre collectivité" not in page
    session.refresh(user)
    assert user.approved_at is not None and user.approved_by_id == colleague.id
    [message] = messages("account_approved", user)
    assert message.context["approved_by"] == "Paul Bernard"

    # Approval does not confirm the address: that stays the applicant's own step.
    client.post("/deconnexion")
    assert login(client, user.email).status_code == 403
    confirm(client, user)
    assert login(client, user.email).status_code == 302


def test_an_agent_refuses_a_stranger_from_the_portal(client, session):
    agencourt = factories.commune("21001")
    colleague = factories.user("applicant", collectivite=agencourt)
    stranger = pending(collectivite=agencourt, full_name="Inconnu")
    session.commit()
    factories.log_in(client, colleague)

    response = client.post(f"/portail/demandes-d-acces/{stranger.id}/refuser", data={"reason": "  "})
    assert response.status_code == 400 and "Indiquez le motif du refus" in text(response)
    response = client.post(f"/portail/demandes-d-acces/{stranger.id}/refuser",
                           data={"reason": "x" * (services.REFUSAL_REASON_MAX + 1)})
    assert response.status_code == 400 and "1000 caractères au plus" in text(response)
    session.refresh(stranger)
    assert stranger.active and messages("account_refused", stranger) == []

    response = client.post(f"/portail/demandes-d-acces/{stranger.id}/refuser",
                           data={"reason": "Personne inconnue à la mairie."})
    assert response.status_code == 302
    assert "est refusée" in text(client.get("/portail/"))
    session.refresh(stranger)
    assert not stranger.active and stranger.approved_at is None
    [message] = messages("account_refused", stranger)
    assert message.context["reason"] == "Personne inconnue à la mairie."
    assert message.context["refused_by"] == "un agent de la collectivité"  # not named
    assert message.context["refused_by_id"] == colleague.id
    assert recipients(message) == {stranger.email}
    client.post("/deconnexion")
    assert login(client, stranger.email, factories.PASSWORD).status_code == 401


def test_an_agent_of_another_collectivite_cannot_decide(client, session):
    user = pending(collectivite=factories.commune("21001"), full_name="Usurpateur Potentiel")
    outsider = factories.user("applicant", collectivite=factories.commune("21002"))
    epci_agent = factories.user("applicant", collectivite=factories.epci("200000925"))
    session.commit()
    for agent in (outsider, epci_agent):
        factories.log_in(client, agent)
        assert user.full_name not in text(client.get("/portail/"))
        assert client.post(f"/portail/demandes-d-acces/{user.id}/valider").status_code == 404
        assert client.post(f"/portail/demandes-d-acces/{user.id}/refuser",
                           data={"reason": "Inconnu"}).status_code == 404
        assert client.get("/administration/comptes").status_code == 403
        assert client.post(f"/administration/comptes/{user.id}/valider").status_code == 403
        client.post("/deconnexion")
    session.refresh(user)
    assert user.approved_at is None and user.active
    assert messages("account_approved", user) == messages("account_refused", user) == []


def test_unknown_accounts_are_404(client, session):
    factories.staff_logged_in(client, session, "admin")
    assert client.post("/administration/comptes/999999/valider").status_code == 404
    assert client.post("/administration/comptes/99999999999/refuser").status_code == 404


def test_unknown_accounts_are_404_for_agents(client, session):
    agent = factories.user("applicant")
    admin = factories.staff("admin")
    session.commit()
    factories.log_in(client, agent)
    assert client.post("/portail/demandes-d-acces/999999/valider").status_code == 404
    # Staff accounts are not requests either.
    assert client.post(f"/portail/demandes-d-acces/{admin.id}/valider").status_code == 404


# --- the admins' page ----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["instructor", "finance"])
def test_only_admins_reach_the_accounts_page(client, session, role):
    user = pending()
    factories.staff_logged_in(client, session, role)
    assert client.get("/administration/comptes").status_code == 403
    assert client.post(f"/administration/comptes/{user.id}/valider").status_code == 403
    assert client.post(f"/administration/comptes/{user.id}/refuser", data={"reason": "x"}).status_code == 403
    # Nor the agents' routes: staff decide from their own page.
    assert client.post(f"/portail/demandes-d-acces/{user.id}/valider").status_code == 403
    assert "Comptes à valider" not in text(client.get("/"))
    session.refresh(user)
    assert user.approved_at is None and user.active


def test_anonymous_is_sent_to_login(client, session):
    response = client.get("/administration/comptes")
    assert response.status_code == 302 and "/connexion" in response.headers["Location"]
    assert client.post("/portail/demandes-d-acces/1/valider").status_code == 302


def test_the_admin_refuses_with_a_reason(client, session):
    user = pending(collectivite=factories.epci("200000925"), full_name="Faux Agent", confirmed=False)
    factories.user("applicant", collectivite=user.collectivite)  # one approved agent already
    admin = factories.staff_logged_in(client, session, "admin")
    page = text(client.get("/administration/comptes"))
    assert "EPCI" in page and "SIREN 200000925" in page and "non confirmée" in page
    assert "1 compte déjà validé" in page
    assert 'data-testid="pending-accounts-count">1' in page  # the navbar badge

    response = client.post(f"/administration/comptes/{user.id}/refuser", data={"reason": ""})
    page = text(response)
    assert response.status_code == 400 and "Indiquez le motif du refus" in page
    assert 'data-testid="refusal-error"' in page and "Faux Agent" in page

    response = client.post(f"/administration/comptes/{user.id}/refuser",
                           data={"reason": "Inconnu du service informatique de la CC."})
    assert response.status_code == 302
    page = text(client.get("/administration/comptes"))
    assert "La demande d'accès de Faux Agent" in page and "Aucun compte n'attend de validation" in page
    session.refresh(user)
    assert not user.active and user.approved_at is None
    [message] = messages("account_refused", user)
    assert message.context["refused_by"] == "la Région Bourgogne-Franche-Comté"
    assert message.context["refused_by_id"] == admin.id

    # Refused: approving it now is refused, with an info message, and changes nothing.
    response = client.post(f"/administration/comptes/{user.id}/valider")
    assert response.status_code == 302
    assert "déjà été refusé" in text(client.get(response.headers["Location"]))
    session.refresh(user)
    assert user.approved_at is None and not user.active
    assert messages("account_approved", user) == []


def test_the_admin_page_is_protected_by_csrf(csrf_client, session):
    user = pending()
    admin = factories.user("admin")
    session.commit()
    page = csrf_client.get("/connexion").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    csrf_client.post("/connexion", data={"email": admin.email, "password": factories.PASSWORD,
                                         "csrf_token": token})
    factories.second_factor(csrf_client, admin)
    response = csrf_client.post(f"/administration/comptes/{user.id}/valider")
    assert response.status_code == 400 and "Le formulaire a expiré" in text(response)
    page = csrf_client.get("/administration/comptes").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert csrf_client.post(f"/administration/comptes/{user.id}/valider",
                            data={"csrf_token": token}).status_code == 302
    session.refresh(user)
    assert user.approved_at is not None


# --- the services --------------------------------------------------------------------------------


def test_who_may_decide(session):
    agencourt = factories.commune("21001")
    user = pending(collectivite=agencourt)
    admin = factories.user("admin")
    retired_admin = factories.user("admin")
    retired_admin.active = False
    colleague = factories.user("applicant", collectivite=agencourt)
    unapproved_colleague = pending(collectivite=agencourt)
    outsider = factories.user("applicant", collectivite=factories.commune("21002"))
    assert may_decide(admin, user) and may_decide(colleague, user)
    for nobody in (None, retired_admin, unapproved_colleague, outsider, user,
                   factories.user("instructor"), factories.user("finance")):
        assert not may_decide(nobody, user)
    with pytest.raises(NotAllowed) as error:
        approve_account(user, outsider, now=NOW)
    assert error.value.status == 403 and "seuls la Région" in str(error.value)
    with pytest.raises(NotAllowed):
        refuse_account(user, unapproved_colleague, "Motif", now=NOW)


def test_a_decision_taken_meanwhile_wins(app, session):
    """Two approvers at the same moment: the conditional UPDATE lets only the first decide."""
    user = pending()
    admin = factories.user("admin")
    session.commit()
    # Someone else approves it behind this session's back: the in-memory user still looks pending.
    session.execute(update(User).where(User.id == user.id).values(approved_at=NOW)
                    .execution_options(synchronize_session=False))
    assert user.approved_at is None
    with app.test_request_context(), pytest.raises(AlreadyDecided):
        approve_account(user, admin, now=NOW)
    with app.test_request_context(), pytest.raises(AlreadyDecided):
        refuse_account(user, admin, "Motif", now=NOW)
    session.rollback()
    assert messages("account_approved", user) == messages("account_refused", user) == []


def test_a_refused_account_loses_its_session(client, session):
    user = factories.user("applicant")
    session.commit()
    factories.log_in(client, user)
    assert client.get("/portail/").status_code == 200
    user.active = False
    session.commit()
    response = client.get("/portail/")
    assert response.status_code == 302 and "/connexion" in response.headers["Location"]


# --- e-mails -------------------------------------------------------------------------------------


def test_the_e_mails_say_what_happened(client, session, app, monkeypatch):
    monkeypatch.setitem(app.config, "BASE_URL", "https://aides.example")
    agencourt = factories.commune("21001")
    admin = factories.user("admin", full_name="Nadia Roux")
    colleague = factories.user("applicant", collectivite=agencourt, full_name="Paul Bernard")
    session.commit()
    user = register(client, agencourt)
    other = register(client, agencourt, email="autre@agencourt.fr", full_name="Autre Personne")
    with app.test_request_context():
        approve_account(user, colleague, now=NOW)
        refuse_account(other, admin, "Inconnu à la mairie.", now=NOW)
    session.flush()

    def mail(kind, target, audience=None):
        message = next(m for m in messages(kind, target)
                       if audience is None or m.key.endswith(f":pending:{audience}"))
        return message, build_email(message, message.deliveries[0])

    def bodies(email):
        return {part.get_content_type(): part.get_content() for part in email.iter_parts()}

    message, email = mail("account_pending", user, "region")
    assert email["Subject"] == kinds.subject("account_pending", None)
    for body in bodies(email).values():
        assert "Bonjour Nadia Roux" in body and "Claire Martin" in body and "Agencourt" in body
        assert "https://aides.example/administration/comptes" in body
        assert "Vérifiez que cette personne appartient bien à la collectivité" in body
    message, email = mail("account_pending", user, "collectivite")
    for body in bodies(email).values():
        assert "Bonjour Paul Bernard" in body and "code INSEE 21001" in body
        assert "https://aides.example/portail/#demandes-acces" in body
        assert "votre compte est déjà validé pour cette collectivité" in body

    message, email = mail("account_approved", user)
    assert email["To"] == user.email
    for body in bodies(email).values():
        assert "Bonjour Claire Martin" in body and "validé par Paul Bernard" in body
        assert "dossiers de votre collectivité (Agencourt)" in body
        assert "https://aides.example/connexion" in body and "Me connecter" in body
        # Approved before confirming the address: the e-mail says what is left to do.
        assert "Il vous reste à confirmer votre adresse électronique" in body

    message, email = mail("account_refused", other)
    assert email["To"] == "autre@agencourt.fr"
    for body in bodies(email).values():
        assert "Bonjour Autre Personne" in body and "Inconnu à la mairie." in body
        assert "par la Région Bourgogne-Franche-Comté" in body and "désactivé" in body
        assert "https://aides.example" not in body  # nothing to log in to


def test_the_new_kinds_are_e_mail_only(session):
    for kind in ("account_pending", "account_approved", "account_refused"):
        assert kind in kinds.KINDS and kind in kinds.ACCOUNT_KINDS


# --- migration -----------------------------------------------------------------------------------


def test_the_migration_approves_existing_accounts(tmp_path):
    app = make_test_app(f"sqlite:///{tmp_path / 'old.db'}", tmp_path)
    with app.app_context():
        upgrade(revision="0e4bdd794b01")  # the schema before approval
        created = "2025-03-04 05:06:07.000000"
        with db.engine.begin() as connection:
            connection.execute(sa.text(
                "INSERT INTO user_account (email, full_name, password_hash, role, active, created_at) "
                "VALUES ('agent@region.fr', 'Agent', 'x', 'instructor', 1, :created)"), {"created": created})
        upgrade()
        user = db.session.scalar(select(User).where(User.email == "agent@region.fr"))
        assert user.approved_at == datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
        assert user.approved_by_id is None
        db.session.remove()
        db.engine.dispose()


def test_create_user_stamps_approval_and_confirmation_at_the_callers_now(session):
    at = datetime(2029, 3, 4, 5, 6, tzinfo=UTC)
    user = factories.user("applicant", now=at)
    assert user.approved_at == at and user.email_confirmed_at == at


# --- dossier e-mails ----------------------------------------------------------------------------------


def test_a_pending_account_gets_no_dossier_e_mail(session):
    from instruction.dossiers import services as dossier_services

    dossier = factories.dossier("received")
    intruder = pending(collectivite=dossier.collectivite)
    dossier_services.request_documents(dossier, factories.staff("instructor"), "La facture signée.",
                                       now=factories.NOW)
    session.flush()
    message = session.scalar(select(OutboxMessage).where(OutboxMessage.dossier_id == dossier.id,
                                                         OutboxMessage.kind == "request_documents"))
    assert message is not None and recipients(message)
    assert intruder.email not in recipients(message)
