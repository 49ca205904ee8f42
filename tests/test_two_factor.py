"""Two-factor authentication (TOTP) for staff: mandatory for admins, enrolment with a QR code made
locally, single-use codes and recovery codes (hashed), throttled attempts (issue 13, point 5)."""

from __future__ import annotations

import base64
import html
import re
from datetime import timedelta

import pyotp
import pytest
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select
from sqlalchemy import text as sa_text

from instruction.accounts import two_factor
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
    assert two_factor.secret_of(stored) == secret and stored.totp_enabled_at == NOW
    assert secret not in stored.totp_secret  # encrypted (below)
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


# --- the secret encrypted at rest ---------------------------------------------------------------

K1 = "oJ5jAqgyoXKkqgOVWHSzSe2Fr7l3h3y6s4mZ1r2wJ8o="  # two Fernet keys (32 bytes, url-safe base64)
K2 = "Qm9uam91ciBsZXMgYWdlbnRzIGRlIGxhIFLDqWdpb24="


def column(session, user) -> str:
    """What the database holds, read by SQL (not through the model)."""
    return session.execute(sa_text("SELECT totp_secret FROM user_account WHERE id = :id"), {"id": user.id}).scalar()


def from_secret_key(secret_key: str) -> bytes:
    """The key the application derives from SECRET_KEY when TOTP_ENCRYPTION_KEYS is empty: HKDF-SHA256,
    32 bytes, no salt, the label below (docs/decisions.md)."""
    hkdf = HKDF(algorithm=SHA256(), length=32, salt=None, info=b"instruction: TOTP secrets at rest, v1")
    return base64.urlsafe_b64encode(hkdf.derive(secret_key.encode()))


def enrol(client, admin) -> tuple[str, list[str]]:
    """The admin's first login: the secret shown, the recovery codes given."""
    password_step(client, admin)
    body = client.get("/connexion/double-authentification").get_data(as_text=True)
    secret = re.search(r'data-secret="([A-Z2-7]{32})"', body).group(1)
    done = client.post("/connexion/double-authentification", data={"code": code_at(secret, NOW)})
    assert done.status_code == 200
    client.post("/deconnexion")
    return secret, re.findall(r"<li>([a-z2-9]{5}-[a-z2-9]{5})</li>", done.get_data(as_text=True))


def test_the_column_never_holds_the_secret_in_clear(app, client, session, monkeypatch):
    monkeypatch.setitem(app.config, "TOTP_ENCRYPTION_KEYS", ())
    admin = factories.user("admin", totp=False)
    session.commit()
    secret, _ = enrol(client, admin)
    stored = column(session, admin)
    assert secret not in stored and secret.lower() not in stored.lower()
    assert Fernet(from_secret_key(app.config["SECRET_KEY"])).decrypt(stored.encode()).decode() == secret
    # With a key of its own, that key encrypts; the factories' secret too.
    monkeypatch.setitem(app.config, "TOTP_ENCRYPTION_KEYS", (K1,))
    other = factories.user("admin")
    session.commit()
    assert Fernet(K1).decrypt(column(session, other).encode()).decode() == factories.TOTP_SECRET
    assert factories.TOTP_SECRET not in column(session, other)
    password_step(client, other)
    assert client.post("/connexion/code", data={"code": code_at(factories.TOTP_SECRET, NOW)}).status_code == 302


def test_a_secret_stored_in_clear_is_encrypted_at_its_next_use(app, client, session, monkeypatch):
    """Before the migration a7c31e9d5b42 the secrets were stored in clear: each one still works, and
    is encrypted when next used."""
    monkeypatch.setitem(app.config, "TOTP_ENCRYPTION_KEYS", (K1,))
    admin = factories.user("admin")
    session.execute(sa_text("UPDATE user_account SET totp_secret = :s WHERE id = :id"),
                    {"s": factories.TOTP_SECRET, "id": admin.id})
    session.commit()
    password_step(client, admin)
    assert client.post("/connexion/code", data={"code": code_at(factories.TOTP_SECRET, NOW)}).status_code == 302
    assert Fernet(K1).decrypt(column(session, admin).encode()).decode() == factories.TOTP_SECRET


def test_rotation_new_key_first_then_reencrypt(app, client, session, monkeypatch):
    monkeypatch.setitem(app.config, "TOTP_ENCRYPTION_KEYS", (K1,))
    sealed = factories.user("admin")
    in_clear = factories.user("instructor", totp=True)
    session.execute(sa_text("UPDATE user_account SET totp_secret = :s WHERE id = :id"),
                    {"s": factories.TOTP_SECRET, "id": in_clear.id})
    session.commit()
    # A new key put first: the secrets encrypted with the old one still open.
    monkeypatch.setitem(app.config, "TOTP_ENCRYPTION_KEYS", (K2, K1))
    password_step(client, sealed)
    assert client.post("/connexion/code", data={"code": code_at(factories.TOTP_SECRET, NOW)}).status_code == 302
    client.post("/deconnexion")
    result = app.test_cli_runner().invoke(args=["two-factor", "reencrypt"])
    assert result.exit_code == 0, result.output
    assert "1 secret(s) chiffré(s), 1 rechiffré(s) avec la première clé" in result.output
    session.expire_all()
    for user in (sealed, in_clear):
        assert Fernet(K2).decrypt(column(session, user).encode()).decode() == factories.TOTP_SECRET
        with pytest.raises(InvalidToken):
            Fernet(K1).decrypt(column(session, user).encode())
    # The old key removed: everything still works.
    monkeypatch.setitem(app.config, "TOTP_ENCRYPTION_KEYS", (K2,))
    frozen_clock_step = NOW + timedelta(seconds=30)
    monkeypatch.setattr("instruction.clock.now", lambda: frozen_clock_step)
    password_step(client, sealed)
    assert client.post("/connexion/code", data={"code": code_at(factories.TOTP_SECRET, frozen_clock_step)}
                       ).status_code == 302


def test_a_wrong_key_is_a_clear_503_and_the_recovery_codes_still_work(app, client, session, monkeypatch, caplog):
    monkeypatch.setitem(app.config, "TOTP_ENCRYPTION_KEYS", (K1,))
    admin = factories.user("admin", totp=False)
    session.commit()
    secret, recovery = enrol(client, admin)
    monkeypatch.setitem(app.config, "TOTP_ENCRYPTION_KEYS", (K2,))  # K1 lost
    password_step(client, admin)
    for _ in range(2):  # the same answer each time, never a 500
        response = client.post("/connexion/code", data={"code": code_at(secret, NOW)})
        assert response.status_code == 503
        assert "la clé de chiffrement du serveur ne correspond pas" in text(response)
        assert "code de secours" in text(response)
    assert "cannot be decrypted with TOTP_ENCRYPTION_KEYS" in caplog.text
    assert not signed_in(client)
    assert client.post("/connexion/code", data={"code": recovery[0]}).status_code == 302
    assert signed_in(client)
    # The command names the account it cannot decrypt, and fails.
    result = app.test_cli_runner().invoke(args=["two-factor", "reencrypt"])
    assert result.exit_code == 1 and f"comptes {admin.id})" in result.output
    assert Fernet(K1).decrypt(column(session, admin).encode()).decode() == secret  # left as it was


def test_a_malformed_key_is_a_clear_503(app, client, session, monkeypatch, caplog):
    admin = factories.user("admin")
    session.commit()
    password_step(client, admin)
    monkeypatch.setitem(app.config, "TOTP_ENCRYPTION_KEYS", ("pas-une-cle",))
    response = client.post("/connexion/code", data={"code": code_at(factories.TOTP_SECRET, NOW)})
    assert response.status_code == 503 and "clé de chiffrement" in text(response)
    assert "each key must be 32 url-safe base64-encoded bytes" in caplog.text


def test_new_key_prints_a_fernet_key(app):
    result = app.test_cli_runner().invoke(args=["two-factor", "new-key"])
    assert result.exit_code == 0
    key = result.output.strip()
    assert len(base64.urlsafe_b64decode(key)) == 32
    assert Fernet(key).decrypt(Fernet(key).encrypt(b"x")) == b"x"
