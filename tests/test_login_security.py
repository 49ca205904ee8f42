"""Login hardening (issue 13): safe ``next``, cookies, neutral messages, constant-time login."""

from __future__ import annotations

import pytest

from tests import factories


@pytest.mark.parametrize("target, expected", [
    ("/portail/", "/portail/"),
    ("/instruction/?onglet=a-traiter&page=2", "/instruction/?onglet=a-traiter&page=2"),
    ("/notifications/#haut", "/notifications/#haut"),
    # everything below leaves the site, or could once a browser has cleaned it up: home instead
    ("//evil.example/", "/"),
    ("///evil.example/", "/"),
    ("/\t/evil.example", "/"),            # ?next=/%09/evil.example: the tab is dropped → //evil
    ("/\n/evil.example", "/"),
    ("/\r\n/evil.example", "/"),
    ("\\\\evil.example", "/"),
    ("/\\evil.example", "/"),
    ("\\/evil.example", "/"),
    ("https://evil.example/", "/"),
    ("http:evil.example", "/"),
    ("javascript:alert(1)", "/"),
    ("data:text/html,<script>alert(1)</script>", "/"),
    (" /portail/", "/"),
    ("/ /evil.example", "/"),
    ("evil.example", "/"),
    ("/\x00/evil.example", "/"),
    ("/\x7f/evil.example", "/"),
    ("/\u3000/evil.example", "/"),         # an ideographic space
    ("/" + "a" * 3000, "/"),
])
def test_next_after_login_stays_on_this_site(client, session, target, expected):
    user = factories.user("instructor")
    session.commit()
    response = client.post("/connexion", query_string={"next": target},
                           data={"email": user.email, "password": factories.PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == expected


# --- sessions end on the server side -------------------------------------------------------------


def _signed_in(client) -> bool:
    return client.get("/").status_code == 200


def _copy_cookie(source, target, name):
    cookie = source.get_cookie(name)
    assert cookie is not None, f"no {name} cookie"
    target.set_cookie(name, cookie.value)


def _login(client, user, remember=False):
    data = {"email": user.email, "password": factories.PASSWORD}
    if remember:
        data["remember"] = "y"
    response = client.post("/connexion", data=data)
    assert response.status_code == 302
    return response


def test_remember_cookie_is_secure_httponly_samesite_like_the_session(app, client, session):
    user = factories.user("instructor")
    session.commit()
    app.config["SESSION_COOKIE_SECURE"] = app.config["REMEMBER_COOKIE_SECURE"] = True
    try:
        cookies = _login(client, user, remember=True).headers.getlist("Set-Cookie")
    finally:
        app.config["SESSION_COOKIE_SECURE"] = app.config["REMEMBER_COOKIE_SECURE"] = False
    remember = next(c for c in cookies if c.startswith("remember_token="))
    assert "Secure" in remember and "HttpOnly" in remember and "SameSite=Lax" in remember
    session_cookie = next(c for c in cookies if c.startswith("session="))
    assert "Secure" in session_cookie and "HttpOnly" in session_cookie


def test_remember_cookie_follows_session_cookie_secure_setting(tmp_path, monkeypatch):
    from instruction.config import load_config

    monkeypatch.setenv("SESSION_COOKIE_SECURE", "true")
    config = load_config(tmp_path, {"SECRET_KEY": "k"})
    assert config["REMEMBER_COOKIE_SECURE"] is True and config["SESSION_COOKIE_SECURE"] is True
    assert config["REMEMBER_COOKIE_DURATION"].days == 30


def test_a_replayed_session_cookie_dies_at_logout(app, client, session):
    user = factories.user("instructor")
    session.commit()
    _login(client, user)
    thief = app.test_client()
    _copy_cookie(client, thief, "session")
    assert _signed_in(thief)
    client.post("/deconnexion")
    assert not _signed_in(thief)
    assert not _signed_in(client)


def test_a_remember_cookie_dies_at_logout(app, client, session):
    user = factories.user("instructor")
    session.commit()
    _login(client, user, remember=True)
    other = app.test_client()
    _copy_cookie(client, other, "remember_token")
    assert _signed_in(other)  # the remember cookie alone signs in
    client.post("/deconnexion")
    replay = app.test_client()
    replay.set_cookie("remember_token", other.get_cookie("remember_token").value)
    assert not _signed_in(replay)


def test_a_password_reset_ends_every_session_and_remember_cookie(app, client, session):
    from instruction.accounts import services

    user = factories.user("applicant", collectivite=factories.commune())
    session.commit()
    _login(client, user, remember=True)
    remembered = app.test_client()
    remembered.set_cookie("remember_token", client.get_cookie("remember_token").value)
    assert _signed_in(client) and _signed_in(remembered)
    token = services.reset_token(user)
    anonymous = app.test_client()
    response = anonymous.post(f"/mot-de-passe/{token}", data={"password": "une toute nouvelle phrase",
                                                                "confirm": "une toute nouvelle phrase"})
    assert response.status_code == 302
    assert not _signed_in(client) and not _signed_in(remembered)


def test_a_password_change_ends_the_other_sessions_not_this_one(app, client, session):
    user = factories.user("finance")
    session.commit()
    _login(client, user)
    elsewhere = app.test_client()
    _login(elsewhere, user, remember=True)
    response = client.post("/compte/mot-de-passe", data={
        "current": factories.PASSWORD, "password": "une toute nouvelle phrase",
        "confirm": "une toute nouvelle phrase"})
    assert response.status_code == 302
    assert _signed_in(client)
    assert not _signed_in(elsewhere)
    fresh = app.test_client()
    assert fresh.post("/connexion", data={"email": user.email, "password": factories.PASSWORD}).status_code == 401


def test_a_password_change_needs_the_current_password(client, session):
    user = factories.user("finance")
    session.commit()
    _login(client, user)
    response = client.post("/compte/mot-de-passe", data={
        "current": "pas le bon", "password": "une toute nouvelle phrase",
        "confirm": "une toute nouvelle phrase"})
    assert response.status_code == 400
    assert "Le mot de passe actuel n&#39;est pas le bon." in response.get_data(as_text=True)


def test_log_out_everywhere(app, client, session):
    user = factories.user("applicant", collectivite=factories.commune())
    session.commit()
    _login(client, user)
    elsewhere = app.test_client()
    _login(elsewhere, user, remember=True)
    assert client.get("/compte/").status_code == 200
    response = client.post("/compte/deconnexion-partout")
    assert response.status_code == 302 and response.headers["Location"] == "/connexion"
    assert not _signed_in(client) and not _signed_in(elsewhere)
    assert not _signed_in(_with_remember(app, elsewhere))


def _with_remember(app, source):
    client = app.test_client()
    cookie = source.get_cookie("remember_token")
    if cookie is not None:
        client.set_cookie("remember_token", cookie.value)
    return client


def test_end_all_sessions_is_the_service_for_deactivation(app, client, session):
    from instruction.accounts.services import end_all_sessions

    user = factories.user("instructor")
    session.commit()
    _login(client, user, remember=True)
    remembered = _with_remember(app, client)
    end_all_sessions(user)
    session.commit()
    assert not _signed_in(client) and not _signed_in(remembered)
    _login(client, user)  # a new login works again
    assert _signed_in(client)
