"""Applicant accounts: registration with e-mail confirmation, password rules, reset, rate limit.
(Approval of the accounts: tests/test_account_approval.py.)"""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from instruction import clock
from instruction.accounts.limiter import limiter
from instruction.accounts.models import User
from instruction.accounts.passwords import common_passwords, password_problems
from instruction.accounts.services import approve_account, find_user_by_email
from instruction.extensions import db
from instruction.notifications.models import OutboxMessage
from tests import factories

GOOD_PASSWORD = "le lavoir de la place fleurie"


pytestmark = pytest.mark.usefixtures("fresh_limiter")


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True)).replace("\u00a0", " ")


def outbox(kind: str, user: User) -> list[OutboxMessage]:
    return list(db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.kind == kind,
                                    OutboxMessage.key.startswith(f"account:{user.id}:"))
        .order_by(OutboxMessage.id)))


def path_of(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def register(client, collectivite, email="secretariat@agencourt.fr", password=GOOD_PASSWORD,
             confirm=None, full_name="Claire Martin"):
    return client.post("/inscription", data={
        "collectivite_id": str(collectivite.id), "full_name": full_name, "email": email,
        "password": password, "confirm": password if confirm is None else confirm})


def login(client, email, password=GOOD_PASSWORD):
    return client.post("/connexion", data={"email": email, "password": password})


# --- registration --------------------------------------------------------------------------------


@pytest.mark.parametrize("query, expected", [
    ("agencourt", "Agencourt"), ("21001", "Agencourt"), ("200000925", "CC de la Plaine Dijonnaise"),
    ("saint jean de losne", "Saint-Jean-de-Losne"),
])
def test_the_collectivite_is_found_by_name_insee_or_siren(client, session, query, expected):
    response = client.get("/inscription", query_string={"q": query})
    assert response.status_code == 200 and expected in text(response)


def test_an_empty_search_gets_a_french_message(client, session):
    response = client.get("/inscription", query_string={"q": " "})
    assert response.status_code == 400 and "Tapez au moins deux lettres" in text(response)
    assert "Aucune collectivité ne correspond" in text(client.get("/inscription", query_string={"q": "zzzzzz"}))


def test_registration_confirmation_and_login(client, session, app):
    agencourt = factories.commune("21001")
    page = text(client.get("/inscription", query_string={"collectivite": agencourt.id}))
    assert "Agencourt" in page and 'name="password"' in page
    response = register(client, agencourt)
    assert response.status_code == 302 and response.headers["Location"] == "/connexion"
    user = find_user_by_email("secretariat@agencourt.fr")
    assert user.role == "applicant" and user.collectivite_id == agencourt.id
    assert user.email_confirmed_at is None and user.check_password(GOOD_PASSWORD)
    assert user.approved_at is None and user.active

    [message] = outbox("account_confirmation", user)
    assert message.key == f"account:{user.id}:confirm:1"
    assert [d.email for d in message.deliveries] == ["secretariat@agencourt.fr"]
    assert message.context["full_name"] == "Claire Martin"
    assert message.context["url"].startswith(app.config["BASE_URL"] + "/inscription/confirmer/")

    # Not confirmed yet: login refused, with a French message and a way to get a new link.
    response = login(client, user.email)
    assert response.status_code == 403
    assert "n'est pas encore confirmée" in text(response) and "Renvoyer le lien" in text(response)
    assert client.get("/portail/").status_code == 302
    response = client.post("/inscription/renvoyer", data={"email": user.email})
    assert response.status_code == 302
    assert [m.key for m in outbox("account_confirmation", user)] == [
        f"account:{user.id}:confirm:1", f"account:{user.id}:confirm:2"]

    response = client.get(path_of(message.context["url"]))
    assert response.status_code == 302
    session.refresh(user)
    assert user.email_confirmed_at is not None
    # Confirmed, but nobody has yet approved the account for Agencourt (tests/test_account_approval.py).
    response = login(client, user.email)
    assert response.status_code == 403 and "n'a pas encore été validé" in text(response)
    assert client.get("/portail/").status_code == 302
    with app.test_request_context():  # the e-mail's link is built with url_for
        approve_account(user, factories.user("admin"), now=clock.now())
    session.commit()
    response = login(client, user.email)
    assert response.status_code == 302 and response.headers["Location"] == "/portail/"
    assert "Agencourt" in text(client.get("/portail/"))


def test_colleagues_of_one_collectivite_each_have_an_account(client, session):
    agencourt = factories.commune("21001")
    assert register(client, agencourt, email="maire@agencourt.fr").status_code == 302
    assert register(client, agencourt, email="adjoint@agencourt.fr").status_code == 302
    users = session.scalars(select(User).where(User.collectivite_id == agencourt.id)).all()
    assert {u.email for u in users} == {"maire@agencourt.fr", "adjoint@agencourt.fr"}


def test_an_e_mail_registers_once_and_the_page_does_not_tell(client, session):
    agencourt = factories.commune("21001")
    first = register(client, agencourt)
    first_message = text(client.get("/connexion"))
    second = register(client, agencourt, email="SECRETARIAT@agencourt.fr", full_name="Quelqu'un d'autre")
    second_message = text(client.get("/connexion"))
    assert first.status_code == second.status_code == 302
    assert "Un message vient d'être envoyé à secretariat@agencourt.fr" in first_message
    assert first_message == second_message  # same words: no account enumeration
    assert "existe déjà" not in second_message
    users = session.scalars(select(User).where(func.lower(User.email) == "secretariat@agencourt.fr")).all()
    assert len(users) == 1 and users[0].full_name == "Claire Martin"
    # The owner of the address is told by e-mail instead.
    [exists] = outbox("account_exists", users[0])
    assert exists.context["email"] == "secretariat@agencourt.fr" and exists.context["url"].endswith("/connexion")


def test_resending_for_an_unknown_or_confirmed_address_says_the_same_and_sends_nothing(client, session):
    confirmed = factories.user("instructor")
    session.commit()
    for email in ("personne@exemple.fr", confirmed.email):
        response = client.post("/inscription/renvoyer", data={"email": email})
        assert response.status_code == 302
        assert "Si un compte non confirmé existe" in text(client.get("/connexion"))
    assert session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "account_confirmation")).all() == []


def test_a_forged_or_expired_confirmation_link_is_refused(client, session, monkeypatch):
    register(client, factories.commune("21001"))
    user = find_user_by_email("secretariat@agencourt.fr")
    url = path_of(outbox("account_confirmation", user)[0].context["url"])
    response = client.get(url[:-3] + "abc")
    assert response.status_code == 400 and "n'est pas valable" in text(response)
    later = clock.now() + timedelta(days=8)
    monkeypatch.setattr("instruction.clock.now", lambda: later)
    response = client.get(url)
    assert response.status_code == 400 and "a expiré" in text(response)
    session.refresh(user)
    assert user.email_confirmed_at is None


# --- password rules ------------------------------------------------------------------------------


def test_password_rules():
    assert password_problems(GOOD_PASSWORD, "claire@agencourt.fr") == []
    assert "au moins 12 caractères (il en a 8)" in password_problems("Soleil!2", "x@y.fr")[0]
    assert "trop courant" in password_problems("AzertyUiop123", "x@y.fr")[0]
    assert "adresse électronique" in password_problems("Claire.Martin@Agencourt.fr", "claire.martin@agencourt.fr")[0]
    assert "adresse électronique" in password_problems("claire.martin.dupont", "claire.martin.dupont@agencourt.fr")[0]
    assert len(common_passwords()) > 100 and "motdepasse123" in common_passwords()


@pytest.mark.parametrize("password, confirm, message", [
    ("court", None, "au moins 12 caractères"),
    ("motdepasse2026", None, "trop courant"),
    ("secretariat@agencourt.fr", None, "ne doit pas reprendre votre adresse"),
    (GOOD_PASSWORD, "autre chose encore", "ne sont pas identiques"),
])
def test_registration_enforces_the_password_rules(client, session, password, confirm, message):
    response = register(client, factories.commune("21001"), password=password, confirm=confirm)
    assert response.status_code == 400 and message in text(response)
    assert find_user_by_email("secretariat@agencourt.fr") is None


def test_registration_form_errors_are_french(client, session):
    response = client.post("/inscription", data={"collectivite_id": str(factories.commune().id), "email": "pas-une-adresse"})
    page = text(response)
    assert response.status_code == 400
    assert "Indiquez vos prénom et nom." in page and "Cette adresse électronique n'est pas valide" in page
    response = client.post("/inscription", data={"full_name": "X", "email": "a@b.fr", "password": GOOD_PASSWORD,
                                                 "confirm": GOOD_PASSWORD})
    assert response.status_code == 400 and "Choisissez d'abord votre collectivité" in text(response)


# --- password reset ------------------------------------------------------------------------------


def ask_reset(client, email):
    return client.post("/mot-de-passe-oublie", data={"email": email})


def test_password_reset_flow(client, session):
    user = factories.user("applicant", email="claire@agencourt.fr")
    session.commit()
    response = ask_reset(client, "Claire@Agencourt.fr")
    assert response.status_code == 302
    [message] = outbox("password_reset", user)
    assert message.key == f"account:{user.id}:reset:1" and message.context["full_name"] == user.full_name
    url = path_of(message.context["url"])

    page = client.get(url)
    assert page.status_code == 200 and "claire@agencourt.fr" in text(page)
    response = client.post(url, data={"password": "court", "confirm": "court"})
    assert response.status_code == 400 and "au moins 12 caractères" in text(response)
    response = client.post(url, data={"password": "nouvelle phrase de passe", "confirm": "nouvelle phrase de passe"})
    assert response.status_code == 302

    assert login(client, user.email, factories.PASSWORD).status_code == 401
    assert login(client, user.email, "nouvelle phrase de passe").status_code == 302
    client.post("/deconnexion")
    # Single use: the link died with the old password.
    response = client.get(url)
    assert response.status_code == 400 and "a déjà servi" in text(response)
    response = client.post(url, data={"password": "encore une autre phrase", "confirm": "encore une autre phrase"})
    assert response.status_code == 400
    assert login(client, user.email, "encore une autre phrase").status_code == 401


def test_a_reset_link_expires_after_one_hour(client, session, monkeypatch):
    user = factories.user("applicant")
    session.commit()
    ask_reset(client, user.email)
    url = path_of(outbox("password_reset", user)[0].context["url"])
    now = clock.now()
    monkeypatch.setattr("instruction.clock.now", lambda: now + timedelta(minutes=59))
    assert client.get(url).status_code == 200
    monkeypatch.setattr("instruction.clock.now", lambda: now + timedelta(minutes=61))
    response = client.get(url)
    assert response.status_code == 400 and "a expiré" in text(response)


def test_reset_for_an_unknown_address_says_the_same_and_sends_nothing(client, session):
    response = ask_reset(client, "inconnu@exemple.fr")
    assert response.status_code == 302 and "Si un compte existe pour cette adresse" in text(client.get("/connexion"))
    assert session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "password_reset")).all() == []


def test_a_reset_confirms_an_unconfirmed_address(client, session):
    user = factories.user("applicant", confirmed=False)
    session.commit()
    ask_reset(client, user.email)
    url = path_of(outbox("password_reset", user)[0].context["url"])
    client.post(url, data={"password": GOOD_PASSWORD, "confirm": GOOD_PASSWORD})
    assert login(client, user.email).status_code == 302


# --- rate limit ------------------------------------------------------------------------------------


def test_too_many_failed_logins_get_a_429_in_french(client, session):
    user = factories.user("applicant")
    session.commit()
    for _ in range(10):
        assert login(client, user.email, "mauvais mot de passe").status_code == 401
    response = login(client, user.email, "mauvais mot de passe")
    assert response.status_code == 429
    assert "Trop de tentatives de connexion infructueuses" in text(response)
    # Even the right password waits: the limit protects the account, not the attempt.
    assert login(client, user.email, factories.PASSWORD).status_code == 429
    # Another account from the same address is not blocked.
    other = factories.user("applicant")
    session.commit()
    assert login(client, other.email, factories.PASSWORD).status_code == 302
    limiter.reset()
    client.post("/deconnexion")
    assert login(client, user.email, factories.PASSWORD).status_code == 302


def test_successful_logins_are_not_counted(client, session):
    user = factories.user("instructor")
    session.commit()
    for _ in range(15):
        assert login(client, user.email, factories.PASSWORD).status_code == 302
        client.post("/deconnexion")


def test_the_limit_is_configurable(client, session, app, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_RATE_LIMIT", "3 per 15 minutes")
    user = factories.user("instructor")
    session.commit()
    statuses = [login(client, user.email, "faux").status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]


def test_registrations_from_one_address_are_rate_limited(client, session, app, monkeypatch):
    monkeypatch.setitem(app.config, "REGISTRATION_RATE_LIMIT", "2 per hour")
    agencourt = factories.commune("21001")
    statuses = [register(client, agencourt, email=f"agent{n}@agencourt.fr").status_code for n in range(3)]
    assert statuses[:2] != [429, 429] and statuses[2] == 429
    assert "beaucoup de demandes en peu de temps" in text(register(client, agencourt, email="agent9@agencourt.fr"))


def test_unconfirmed_login_rollback_keeps_last_login_empty(client, session):
    user = factories.user("applicant", confirmed=False)
    session.commit()
    assert login(client, user.email, factories.PASSWORD).status_code == 403
    session.refresh(user)
    assert user.last_login_at is None
