"""Two-factor authentication (TOTP) for staff: mandatory for admins, enrolment with a QR code made
locally, single-use codes and recovery codes (hashed), throttled attempts (issue 13, point 5)."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select

from instruction.accounts.models import RecoveryCode, User
from tests import factories
from tests.factories import NOW

pytestmark = pytest.mark.usefixtures("fresh_limiter")


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    state = {"now": NOW}
    monkeypatch.setattr("instruction.clock.now", lambda: state["now"])
    return state


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def password_step(client, user):
    return client.post("/connexion", data={"email": user.email, "password": factories.PASSWORD})


def signed_in(client) -> bool:
    return client.get("/").status_code == 200


def code_at(secret, instant) -> str:
    return pyotp.TOTP(secret).at(instant)


def test_an_admin_without_it_enrols_at_first_login(client, session, frozen_clock):
    admin = factories.user("admin", totp=False)
    session.commit()
    response = password_step(client, admin)
    assert response.headers["Location"] == "/connexion/double-authentification"
    assert not signed_in(client)  # the password alone is not a login for an admin
    page = client.get("/connexion/double-authentification")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "<svg" in body and 'class="segno"' in body  # QR made here
    secret = re.search(r'data-secret="([A-Z2-7]{32})"', body).group(1)
    wrong = client.post("/connexion/double-authentification", data={"code": "000000"})
    assert wrong.status_code == 401 and "Ce code ne correspond pas" in text(wrong)
    done = client.post("/connexion/double-authentification", data={"code": code_at(secret, NOW)})
    assert done.status_code == 200
    codes = re.findall(r"<li>([a-z2-9]{5}-[a-z2-9]{5})</li>", done.get_data(as_text=True))
    assert len(codes) == 10 and len(set(codes)) == 10
    assert signed_in(client)
    session.expire_all()
    stored = session.get(User, admin.id)
    assert stored.totp_secret == secret and stored.totp_enabled_at == NOW
    hashes = session.scalars(select(RecoveryCode.code_hash).where(RecoveryCode.user_id == admin.id)).all()
    assert len(hashes) == 10 and not any(code.replace("-", "") in h for code in codes for h in hashes)


def test_an_enrolled_admin_gives_a_code_after_the_password(app, client, session, frozen_clock):
    admin = factories.user("admin")
    session.commit()
    assert password_step(client, admin).headers["Location"] == "/connexion/code"
    assert not signed_in(client)
    assert client.post("/connexion/code", data={"code": "123456"}).status_code == 401
    code = code_at(factories.TOTP_SECRET, NOW)
    response = client.post("/connexion/code", data={"code": code})
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert signed_in(client)
    # The same code, on another browser, a few seconds later: refused (a code is spent once used).
    other = app.test_client()
    password_step(other, admin)
    frozen_clock["now"] = NOW + timedelta(seconds=5)
    assert other.post("/connexion/code", data={"code": code}).status_code == 401
    # The next step's code works; the code of 30 seconds before and after too (clock drift).
    frozen_clock["now"] = NOW + timedelta(seconds=30)
    assert other.post("/connexion/code", data={"code": code_at(factories.TOTP_SECRET, NOW + timedelta(seconds=60))}
                      ).status_code == 302


def test_a_code_out_of_the_window_is_refused(client, session, frozen_clock):
    admin = factories.user("admin")
    session.commit()
    password_step(client, admin)
    assert client.post("/connexion/code", data={"code": code_at(factories.TOTP_SECRET, NOW - timedelta(seconds=90))}
                       ).status_code == 401


def test_next_is_kept_through_the_second_factor(client, session):
    admin = factories.user("admin")
    session.commit()
    client.post("/connexion?next=/administration/comptes", data={"email": admin.email,
                                                                 "password": factories.PASSWORD})
    response = client.post("/connexion/code", data={"code": code_at(factories.TOTP_SECRET, NOW)})
    assert response.headers["Location"] == "/administration/comptes"


def test_a_recovery_code_works_once(app, client, session):
    admin = factories.user("admin", totp=False)
    session.commit()
    password_step(client, admin)
    body = client.get("/connexion/double-authentification").get_data(as_text=True)
    secret = re.search(r'data-secret="([A-Z2-7]{32})"', body).group(1)
    done = client.post("/connexion/double-authentification", data={"code": code_at(secret, NOW)})
    recovery = re.findall(r"<li>([a-z2-9]{5}-[a-z2-9]{5})</li>", done.get_data(as_text=True))[3]
    client.post("/deconnexion")
    password_step(client, admin)
    assert client.post("/connexion/code", data={"code": recovery.upper().replace("-", " ")}).status_code == 302
    client.post("/deconnexion")
    password_step(client, admin)
    assert client.post("/connexion/code", data={"code": recovery}).status_code == 401


def test_wrong_codes_are_throttled(client, session):
    admin = factories.user("admin")
    session.commit()
    password_step(client, admin)
    statuses = [client.post("/connexion/code", data={"code": f"{n:06d}"}).status_code for n in range(5)]
    assert statuses == [401] * 5
    response = client.post("/connexion/code", data={"code": code_at(factories.TOTP_SECRET, NOW)})
    assert response.status_code == 429  # even the right code waits: the limit protects the account


def test_the_pending_login_expires(client, session, frozen_clock):
    admin = factories.user("admin")
    session.commit()
    password_step(client, admin)
    frozen_clock["now"] = NOW + timedelta(minutes=11)
    response = client.post("/connexion/code", data={"code": code_at(factories.TOTP_SECRET, frozen_clock["now"])})
    assert response.status_code == 302 and response.headers["Location"] == "/connexion"
    assert not signed_in(client)


def test_an_instructor_may_turn_it_on_then_needs_it(app, client, session):
    instructor = factories.user("instructor")
    session.commit()
    assert password_step(client, instructor).headers["Location"] == "/"  # optional: not yet on
    page = client.get("/compte/double-authentification")
    secret = re.search(r'data-secret="([A-Z2-7]{32})"', page.get_data(as_text=True)).group(1)
    done = client.post("/compte/double-authentification", data={"code": code_at(secret, NOW)})
    assert done.status_code == 200 and "Vos codes de secours" in text(done)
    client.post("/deconnexion")
    assert password_step(client, instructor).headers["Location"] == "/connexion/code"


def test_admins_cannot_turn_it_off_applicants_cannot_turn_it_on(client, session, frozen_clock):
    admin = factories.user("admin")
    session.commit()
    factories.log_in(client, admin)
    frozen_clock["now"] = NOW + timedelta(seconds=60)
    response = client.post("/compte/double-authentification/desactiver",
                           data={"code": code_at(factories.TOTP_SECRET, frozen_clock["now"])})
    assert response.status_code == 403 and "obligatoire pour les administrateurs" in text(response)
    session.expire_all()
    assert session.get(User, admin.id).totp_enabled_at is not None
    client.post("/deconnexion")
    applicant = factories.user("applicant", collectivite=factories.commune())
    session.commit()
    factories.log_in(client, applicant)
    assert client.get("/compte/double-authentification").status_code == 403
