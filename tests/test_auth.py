from __future__ import annotations

import re

import pytest

from tests import factories


def login(client, email, password=factories.PASSWORD):
    return client.post("/connexion", data={"email": email, "password": password})


def test_login_then_home_per_role(client, session):
    for role, heading in [("instructor", "Espace instruction"), ("finance", "Espace finances"),
                          ("admin", "Administration"), ("applicant", "Espace demandeur")]:
        user = factories.user(role)
        session.commit()
        factories.log_in(client, user)  # with the second factor for the admin
        page = client.get("/").get_data(as_text=True)
        assert heading in page and user.full_name in page
        client.post("/deconnexion")


def test_wrong_password_gets_a_french_message(client, session):
    user = factories.user("instructor")
    session.commit()
    response = login(client, user.email, "not the password")
    assert response.status_code == 401
    assert "Adresse électronique ou mot de passe incorrect." in response.get_data(as_text=True)
    assert client.get("/").status_code == 302  # still anonymous


def test_email_is_case_insensitive(client, session):
    factories.user("instructor", email="Agent.Region@Exemple.fr")
    session.commit()
    assert login(client, "  AGENT.region@exemple.FR ").status_code == 302


def test_anonymous_is_sent_to_login(client):
    response = client.get("/")
    assert response.status_code == 302 and "/connexion" in response.headers["Location"]


def test_login_ignores_an_offsite_next(client, session):
    user = factories.user("instructor")
    session.commit()
    response = client.post("/connexion?next=//evil.example/", data={"email": user.email, "password": factories.PASSWORD})
    assert response.headers["Location"] == "/"


def test_form_without_csrf_token_is_refused(csrf_client, session):
    user = factories.user("instructor")
    session.commit()
    response = login(csrf_client, user.email)
    assert response.status_code == 400
    assert "Le formulaire a expiré" in response.get_data(as_text=True)
    page = csrf_client.get("/connexion").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = csrf_client.post("/connexion", data={"email": user.email, "password": factories.PASSWORD,
                                                     "csrf_token": token})
    assert response.status_code == 302


def test_session_cookie_is_httponly_and_samesite(client, session):
    user = factories.user("instructor")
    session.commit()
    cookie = login(client, user.email).headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


@pytest.mark.parametrize("path", ["/nulle-part", "/static/absent.css"])
def test_not_found_page_is_french(client, path):
    response = client.get(path)
    assert response.status_code == 404
    if path == "/nulle-part":
        assert "Page introuvable" in response.get_data(as_text=True)


def test_bootstrap_is_served_locally(client, session):
    page = client.get("/connexion").get_data(as_text=True)
    assert "cdn" not in page.lower()
    css = re.search(r'href="([^"]*bootstrap[^"]*\.css)"', page).group(1)
    assert client.get(css).status_code == 200


def test_an_id_beyond_the_integer_column_is_a_404(client, session):
    user = factories.user("instructor")
    session.commit()
    login(client, user.email)
    assert client.get("/instruction/dossiers/99999999999999").status_code == 404
    assert client.get("/documents/99999999999999/telecharger").status_code == 404


def test_behind_a_trusted_proxy_the_client_address_is_the_forwarded_one(tmp_path):
    from instruction import create_app

    seen = {}
    for proxies in (0, 1):
        app = create_app({"TESTING": True, "SECRET_KEY": "x", "PROXY_COUNT": proxies,
                          "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'p.db'}"})

        @app.get("/ip")
        def ip():
            from flask import request
            return request.remote_addr

        seen[proxies] = app.test_client().get(
            "/ip", headers={"X-Forwarded-For": "203.0.113.7"}, environ_base={"REMOTE_ADDR": "10.0.0.2"}
        ).get_data(as_text=True)
    assert seen == {0: "10.0.0.2", 1: "203.0.113.7"}
