"""Integers sent by users go through one bounded parser: hostile values are a 4xx or ignored,
never a 500 (issue 13: "²", twenty-digit ids, a 5,000-digit aid number)."""

from __future__ import annotations

import pytest

from instruction.web.numbers import bounded_int, page_number
from tests import factories
from tests.factories import NOW

HOSTILE = ["²", "٣", "99999999999999999999", "9" * 5000, "-1", "0", " 1", "+1", "1_0", "1.0", "0x1f",
           "1\n", "", "abc"]


@pytest.mark.parametrize("text, expected", [
    ("1", 1), ("42", 42), ("2147483647", 2147483647), ("2147483648", None), ("0", None),
    ("-1", None), ("²", None), ("٣", None), ("99999999999999999999", None), ("9" * 5000, None),
    (" 1", None), ("1 ", None), ("+1", None), ("1_0", None), ("1.0", None), ("", None),
    (None, None), (True, None), (7, 7), ("007", 7),
])
def test_bounded_int_accepts_only_ascii_digits_within_bounds(text, expected):
    assert bounded_int(text) == expected


def test_bounded_int_bounds_are_inclusive():
    assert bounded_int("600", high=600) == 600 and bounded_int("601", high=600) is None
    assert bounded_int("0", low=0) == 0


@pytest.mark.parametrize("text, expected", [("3", 3), ("²", 1), ("99999999999999999999", 1), (None, 1),
                                            ("1000001", 1)])
def test_page_number_falls_back_to_the_first_page(text, expected):
    assert page_number(text) == expected


@pytest.fixture
def frozen(monkeypatch):
    monkeypatch.setattr("instruction.clock.now", lambda: NOW)


@pytest.mark.parametrize("value", HOSTILE)
def test_registration_ignores_a_hostile_collectivite(client, session, value):
    response = client.get("/inscription", query_string={"collectivite": value})
    assert response.status_code == 200
    response = client.post("/inscription", data={"collectivite_id": value, "email": "a@exemple.fr",
                                                 "full_name": "A", "password": "x"})
    assert response.status_code == 400


@pytest.mark.parametrize("value", HOSTILE)
def test_staff_pages_ignore_a_hostile_page_number(client, session, value):
    factories.staff_logged_in(client, session, "instructor")
    assert client.get("/instruction/", query_string={"page": value}).status_code == 200
    assert client.get("/notifications/", query_string={"page": value}).status_code == 200
    assert client.post("/notifications/tout-lu", data={"page": value}).status_code == 302


@pytest.mark.parametrize("value", HOSTILE)
def test_admin_accounts_page_ignores_a_hostile_page_number(client, session, value):
    factories.staff_logged_in(client, session, "admin")
    assert client.get("/administration/comptes", query_string={"page": value}).status_code == 200


@pytest.mark.parametrize("path", ["/instruction/dossiers/99999999999999999999",
                                  "/instruction/dossiers/٣", "/documents/2147483648/telecharger",
                                  "/notifications/99999999999999999999/ouvrir"])
def test_hostile_ids_in_the_url_are_404(client, session, path):
    factories.staff_logged_in(client, session, "instructor")
    assert client.get(path).status_code == 404


@pytest.mark.parametrize("value", HOSTILE + ["6"])
def test_a_hostile_aid_number_is_a_400(client, session, frozen, value):
    user = factories.user("applicant", collectivite=factories.commune())
    session.commit()
    factories.log_in(client, user)
    response = client.post("/portail/dossiers", data={"aid_number": value, "client_token": "jeton-0001-abcd"})
    assert 400 <= response.status_code < 500


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_pack_months_and_line_are_refused_or_ignored(client, session, frozen, value):
    dossier = factories.dossier("draft", aid=1)
    dossier_incomplete = factories.dossier("incomplete", aid=1)
    session.commit()
    factories.log_in(client, factories.applicant_of(dossier.collectivite))
    base = f"/portail/dossiers/{dossier.id}"
    estimate = client.get(f"{base}/estimation", query_string={"category": "licence", "amount_ht": "100",
                                                               "pack": value, "months": value})
    assert estimate.status_code == 200
    line = client.post(f"{base}/depenses", data={"category": "licence", "label": "Licence",
                                                  "amount_ht": "100", "pack": value, "months": value})
    assert line.status_code in (302, 400) and (line.status_code == 400 or value in ("", " 1"))
    answer = client.post(f"/portail/dossiers/{dossier_incomplete.id}/completer",
                         data={"message": "Voici", "line_id": value})
    assert answer.status_code in (302, 400)
