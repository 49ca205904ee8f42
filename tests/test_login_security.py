"""Login hardening (issue 13): safe ``next``, cookies, neutral messages, constant-time login."""

from __future__ import annotations

import re

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


# --- neutral answers and rate limits ------------------------------------------------------------

GOOD_PASSWORD = "le lavoir de la place fleurie"


def _register(client, email, password=GOOD_PASSWORD):
    return client.post("/inscription", data={
        "collectivite_id": str(factories.commune("21001").id), "full_name": "Claire Martin",
        "email": email, "password": password, "confirm": password})


def test_login_hashes_a_password_whatever_the_address(client, session, monkeypatch):
    """An unknown address costs one password hash, like a known one: the answer's delay does not
    tell who has an account (issue 13: 5 ms against 94 ms)."""
    import werkzeug.security

    known = factories.user("instructor")
    inactive = factories.user("instructor", email="parti@exemple.fr")
    inactive.active = False
    session.commit()
    client.post("/connexion", data={"email": "echauffement@exemple.fr", "password": "x"})  # the dummy hash, once
    calls = []
    real = werkzeug.security._hash_internal
    monkeypatch.setattr(werkzeug.security, "_hash_internal",
                        lambda *args, **kw: calls.append(1) or real(*args, **kw))
    for email in ("inconnu@exemple.fr", known.email, inactive.email):
        calls.clear()
        response = client.post("/connexion", data={"email": email, "password": "pas le bon mot de passe"})
        assert response.status_code == 401
        assert len(calls) == 1, email


def test_reset_and_resend_say_the_same_for_unknown_and_known_addresses(client, session, fresh_limiter):
    known = factories.user("applicant", collectivite=factories.commune())
    session.commit()
    answers = []
    for email in ("inconnu@exemple.fr", known.email):
        client.post("/mot-de-passe-oublie", data={"email": email})
        answers.append(client.get("/connexion").get_data(as_text=True))
    assert answers[0] == answers[1]


def test_registration_counts_only_valid_attempts(app, client, session, fresh_limiter, monkeypatch):
    monkeypatch.setitem(app.config, "REGISTRATION_RATE_LIMIT", "3 per hour")
    for n in range(8):  # mistakes: a shared office corrects them without being locked out
        assert _register(client, f"agent{n}@agencourt.fr", password="court").status_code == 400
    for n in range(3):
        assert _register(client, f"agent{n}@agencourt.fr").status_code == 302
    response = _register(client, "agent9@agencourt.fr")
    assert response.status_code == 429
    page = response.get_data(as_text=True)
    # The limit is "per hour": the wait told is the hour's, not a quarter of an hour.
    assert "Attendez 1 heure, puis réessayez." in page or re.search(r"Attendez 5\d minutes", page), page


def test_login_limit_tells_the_real_wait(app, client, session, fresh_limiter, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_RATE_LIMIT", "2 per 5 minutes")
    user = factories.user("instructor")
    session.commit()
    for _ in range(2):
        client.post("/connexion", data={"email": user.email, "password": "faux"})
    response = client.post("/connexion", data={"email": user.email, "password": "faux"})
    assert response.status_code == 429
    assert re.search(r"attendez [45] minutes avant de réessayer", response.get_data(as_text=True))


@pytest.fixture
def redis_limiter(app):
    """The limiter on a Redis database of its own, then back to the suite's storage."""
    import redis

    from instruction.accounts.limiter import limiter

    url = "redis://127.0.0.1:6379/6"
    server = redis.Redis.from_url(url)
    server.flushdb()
    yield url, server
    server.flushdb()
    limiter.init_app(app)
    limiter.reset()


def test_the_limiter_counts_in_redis_whenever_redis_is_configured(tmp_path, redis_limiter):
    """With REDIS_URL and no RATELIMIT_STORAGE_URI, every web process counts in the same Redis
    (issue 13: four gunicorn workers with in-memory counters accepted 23 failed logins)."""
    from tests.conftest import TEST_DATABASE_URL, make_test_app

    url, server = redis_limiter
    other = make_test_app(TEST_DATABASE_URL, tmp_path, REDIS_URL=url)
    assert other.config["RATELIMIT_STORAGE_URI"] == url
    with other.test_client() as client:
        client.post("/connexion", data={"email": "inconnu@exemple.fr", "password": "faux"})
    keys = [k.decode() for k in server.keys("*")]
    assert any("inconnu@exemple.fr" in k for k in keys), keys
