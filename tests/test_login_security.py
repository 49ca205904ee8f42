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
