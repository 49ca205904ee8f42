"""The instruction queue: access, tabs and their counts, filters, search, sorting, pagination,
bookmarkable URLs, bad values, "je m'en occupe", and a bounded number of queries at 10,000 rows."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import event

from instruction.backoffice import queries
from instruction.dossiers import services
from tests import factories
from tests.factories import NOW


def counts(html: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r'data-count="([\w-]+)">(\d+)<', html)}


def row_ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'<tr data-dossier="(\d+)"', html)]


def get(client, path="/instruction/", **args):
    response = client.get(path, query_string=args)
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    return response.get_data(as_text=True)


# --- access --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/instruction/", "/instruction/dossiers/1", "/instruction/epci/200000925"])
def test_anonymous_is_sent_to_login(client, path):
    response = client.get(path)
    assert response.status_code == 302 and "/connexion" in response.headers["Location"]


def test_applicant_gets_403_everywhere(client, session):
    dossier = factories.dossier("received")
    applicant = factories.applicant_of(dossier.collectivite)
    session.commit()
    factories.log_in(client, applicant)
    for path in ("/instruction/", f"/instruction/dossiers/{dossier.id}", "/instruction/epci/200000925"):
        assert client.get(path).status_code == 403
    response = client.post(f"/instruction/dossiers/{dossier.id}/actions/declare_eligible")
    assert response.status_code == 403
    session.refresh(dossier)
    assert dossier.state == "received"


@pytest.mark.parametrize("role", ["instructor", "finance", "admin"])
def test_staff_see_the_queue(client, session, role):
    factories.staff_logged_in(client, session, role)
    html = get(client)
    assert "Dossiers" in html and 'aria-label="Pagination"' not in html


# --- tabs ----------------------------------------------------------------------------------------


def test_tab_counts_and_drafts_are_hidden(client, session):
    for state in ("draft", "received", "incomplete", "eligible", "granted", "paid", "refused", "withdrawn"):
        factories.dossier(state)
    draft = factories.dossier("draft")
    user = factories.staff_logged_in(client, session)
    html = get(client)
    assert counts(html) == {"a-instruire": 3, "decides": 1, "demandes-versement": 0, "verses": 1, "clos": 2, "tous": 7,
                            "mes-dossiers": 0}
    assert len(row_ids(html)) == 3
    assert draft.id not in row_ids(get(client, onglet="tous"))
    assert client.get(f"/instruction/dossiers/{draft.id}").status_code == 404
    assert user.full_name in html


def test_tab_counts_are_one_query_with_the_filters(session):
    factories.dossier("received", aid=2)
    factories.dossier("granted", aid=4)
    user = factories.user("instructor")
    f = queries.QueueFilters(tab="tous", role="instructor", user_id=user.id, aid=4)
    assert queries.tab_counts(f) == {"a-instruire": 0, "decides": 1, "demandes-versement": 0, "verses": 0, "clos": 0, "tous": 1,
                                     "mes-dossiers": 0}


def test_finance_starts_on_granted_dossiers_and_has_no_mes_dossiers(client, session):
    granted = factories.dossier("granted")
    factories.dossier("received")
    factories.staff_logged_in(client, session, "finance")
    html = get(client)
    assert row_ids(html) == [granted.id]
    assert 'aria-current="page"' in html and "mes-dossiers" not in counts(html)
    assert "Je m&#39;en occupe" not in html


def test_take_a_dossier_then_find_it_in_mes_dossiers(client, session):
    dossier = factories.dossier("received")
    user = factories.staff_logged_in(client, session)
    back = "/instruction/?onglet=a-instruire&aide=2"
    response = client.post(f"/instruction/dossiers/{dossier.id}/actions/assign", data={"retour": back})
    assert response.status_code == 302 and response.headers["Location"] == back
    session.refresh(dossier)
    assert dossier.assigned_to_id == user.id
    assert dossier.events[-1].action == "assign"
    html = get(client, onglet="mes-dossiers")
    assert row_ids(html) == [dossier.id] and counts(html)["mes-dossiers"] == 1
    assert f"Vous prenez en charge le dossier {dossier.reference}." in html


def test_take_ignores_an_offsite_return(client, session):
    dossier = factories.dossier("received")
    factories.staff_logged_in(client, session)
    response = client.post(f"/instruction/dossiers/{dossier.id}/actions/assign",
                           data={"retour": "//evil.example/instruction/"})
    assert response.headers["Location"] == f"/instruction/dossiers/{dossier.id}"


def test_finance_cannot_take_a_dossier(client, session):
    dossier = factories.dossier("received")
    factories.staff_logged_in(client, session, "finance")
    response = client.post(f"/instruction/dossiers/{dossier.id}/actions/assign")
    assert response.status_code == 403
    assert "Votre rôle ne permet pas cette action sur le dossier." in response.get_data(as_text=True)
    session.refresh(dossier)
    assert dossier.assigned_to_id is None


# --- filters -------------------------------------------------------------------------------------


@pytest.fixture
def varied(session):
    """Dossiers of different aids, kinds, territories, states and instructors."""
    commune = factories.commune("21001")  # Agencourt, in EPCI 200070894 (Côte-d'Or)
    other_instructor = factories.user("instructor", full_name="Zoé Instructrice")
    d = {
        "epci_a2": factories.dossier("received", aid=2),
        "epci_a4": factories.dossier("eligible", aid=4),
        "commune_a1": factories.dossier("received", aid=1, collectivite=commune),
        "granted_a2": factories.dossier("granted", aid=2, collectivite=factories.epci("200070894")),
    }
    services.assign(d["epci_a4"], other_instructor, now=NOW)
    session.flush()
    d["other_instructor"] = other_instructor
    return d


def test_each_filter(client, session, varied):
    factories.staff_logged_in(client, session)
    ids = {k: v.id for k, v in varied.items() if k != "other_instructor"}

    def listed(**args):
        return set(row_ids(get(client, onglet="tous", **args)))

    assert listed() == set(ids.values())
    assert listed(etat="eligible") == {ids["epci_a4"]}
    assert listed(aide="1") == {ids["commune_a1"]}
    assert listed(type="commune") == {ids["commune_a1"]}
    assert listed(type="epci") == {ids["epci_a2"], ids["epci_a4"], ids["granted_a2"]}
    assert listed(epci="200000925") == {ids["epci_a2"], ids["epci_a4"]}
    assert listed(epci="200070894") == {ids["commune_a1"], ids["granted_a2"]}
    assert listed(departement="21") == set(ids.values())
    assert listed(departement="25") == set()
    assert listed(instructeur=str(varied["other_instructor"].id)) == {ids["epci_a4"]}
    assert listed(instructeur="aucun") == set(ids.values()) - {ids["epci_a4"]}
    assert listed(aide="2", etat="granted") == {ids["granted_a2"]}


def test_submitted_between_is_read_in_paris_time(client, session):
    # 23:30 UTC on 28 November is 00:30 on 29 November in Paris.
    late = factories.dossier("received", now=datetime(2026, 11, 28, 23, 30, tzinfo=UTC))
    early = factories.dossier("received", now=datetime(2026, 11, 28, 10, 0, tzinfo=UTC))
    factories.staff_logged_in(client, session)
    assert row_ids(get(client, depose_du="2026-11-29")) == [late.id]
    assert row_ids(get(client, depose_au="2026-11-28")) == [early.id]
    assert row_ids(get(client, depose_du="28/11/2026", depose_au="28/11/2026")) == [early.id]
    assert set(row_ids(get(client, depose_du="2026-11-28", depose_au="2026-11-29"))) == {late.id, early.id}


def test_search_reference_and_name_case_insensitive(client, session, varied):
    factories.staff_logged_in(client, session)
    assert set(row_ids(get(client, onglet="tous", q="plaine DIJONNAISE"))) == {
        varied["epci_a2"].id, varied["epci_a4"].id}
    reference = varied["commune_a1"].reference
    assert row_ids(get(client, onglet="tous", q=reference.lower())) == [varied["commune_a1"].id]
    assert row_ids(get(client, onglet="tous", q="agencourt a1")) == [varied["commune_a1"].id]
    assert row_ids(get(client, onglet="tous", q="21001")) == [varied["commune_a1"].id]
    assert row_ids(get(client, onglet="tous", q="100%_")) == []  # LIKE wildcards are literal


def test_search_ignores_accents_and_hyphens(client, session):
    bessey = factories.dossier("received", aid=4, collectivite=factories.commune("21067"))
    factories.staff_logged_in(client, session)
    assert row_ids(get(client, onglet="tous", q="bessey les citeaux")) == [bessey.id]
    assert row_ids(get(client, onglet="tous", q="Lès-Cîteaux")) == [bessey.id]


def test_sort_by_any_column_both_ways(client, session):
    small = factories.dossier("eligible", lines=[{"category": "equipement", "label": "A", "amount_ht": "1000.00"}])
    big = factories.dossier("eligible", lines=[{"category": "equipement", "label": "B", "amount_ht": "9000.00"}])
    pending = factories.dossier("received", aid=1)  # no computed amount yet: always last
    factories.staff_logged_in(client, session)
    assert row_ids(get(client, tri="calcule")) == [small.id, big.id, pending.id]
    assert row_ids(get(client, tri="calcule", ordre="desc")) == [big.id, small.id, pending.id]
    assert row_ids(get(client, tri="aide", ordre="desc"))[-1] == pending.id
    for key in queries.sorts_for(queries.TABS["a-instruire"]):  # the columns of that tab
        html = get(client, tri=key, ordre="desc")
        assert 'aria-sort="descending"' in html and len(row_ids(html)) == 3


def test_pagination_and_bookmarkable_links(client, session):
    factories.bulk_dossiers(queries.PER_PAGE + 10, states=("received",))
    factories.staff_logged_in(client, session)
    first = get(client, aide="2", tri="reference")
    assert len(row_ids(first)) == queries.PER_PAGE
    assert "Dossiers 1 à 50 sur 60" in first
    # Every link keeps the filters: tabs, sort headers, pages, dossiers.
    links = re.sub(r'<a [^>]*data-testid="clear-filters".*?</a>', "", first).replace("&amp;", "&")
    for href in re.findall(r'href="(/instruction/[^"]*)"', links):
        if href.startswith("/instruction/?") or href.startswith("/instruction/dossiers/"):
            args = parse_qs(urlsplit(href).query)
            assert args.get("aide") == ["2"], href
    second = get(client, aide="2", tri="reference", page="2")
    assert len(row_ids(second)) == 10 and "Dossiers 51 à 60 sur 60" in second
    assert not set(row_ids(first)) & set(row_ids(second))
    # The same URL gives the same view.
    assert row_ids(get(client, aide="2", tri="reference", page="2")) == row_ids(second)


@pytest.mark.parametrize("args, message", [
    ({"etat": "bidon"}, "État « bidon » inconnu"),
    ({"aide": "9"}, "Aide « 9 » inconnue"),
    ({"aide": "'; drop table dossier; --"}, "inconnue"),
    ({"departement": "99"}, "Département « 99 » inconnu"),
    ({"epci": "123"}, "EPCI « 123 » inconnu"),
    ({"type": "region"}, "Type de demandeur « region » inconnu"),
    ({"instructeur": "abc"}, "Instructeur « abc » inconnu"),
    ({"depose_du": "2026-02-30"}, "Date de début « 2026-02-30 » invalide"),
    ({"depose_au": "0001-01-01"}, "Date de fin « 0001-01-01 » invalide"),
    ({"depose_du": "2026-12-01", "depose_au": "2026-11-01"}, "La date de début est postérieure"),
    ({"tri": "password"}, "Tri « password » inconnu"),
    ({"ordre": "sideways"}, "Ordre de tri « sideways » inconnu"),
    ({"page": "-1"}, "Numéro de page « -1 » invalide"),
    ({"page": "99999999999999999999"}, "Numéro de page"),
    ({"page": "7"}, "La page 7 n'existe pas"),
    ({"onglet": "secret"}, "Onglet « secret » inconnu"),
    ({"q": "a\x00b" + "x" * 200}, "Recherche limitée"),
])
def test_bad_filter_values_are_ignored_with_a_french_warning(client, session, args, message):
    dossier = factories.dossier("received")
    factories.staff_logged_in(client, session)
    html = get(client, **args)
    assert message in html.replace("&#39;", "'").replace("&#34;", '"')
    if "q" not in args:
        assert row_ids(html) == [dossier.id]


# --- 10,000 dossiers: a bounded number of queries ------------------------------------------------


class StatementCounter:
    """Counts the SQL statements sent on the test's connection (savepoints of the per-test
    transaction, which production does not have, are left out)."""

    def __init__(self, connection):
        self.connection = connection
        self.statements: list[str] = []

    def __enter__(self):
        event.listen(self.connection, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc):
        event.remove(self.connection, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, parameters, context, executemany):
        if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK TO")):
            self.statements.append(statement)


def queue_statements(client, session, **args) -> tuple[int, str]:
    """One GET of the queue as a fresh request sees it (nothing left in the identity map: the
    test client shares the test's session)."""
    session.expire_all()
    with StatementCounter(session.connection()) as counter:
        html = get(client, **args)
    return len(counter.statements), html


def test_first_page_of_10000_dossiers_takes_a_bounded_number_of_queries(client, session):
    instructors = [factories.user("instructor") for _ in range(5)]
    territory = [factories.epci("200000925"), factories.epci("200070894"), factories.epci("242100410")]
    factories.bulk_dossiers(3, collectivites=territory, assignees=instructors)
    user = factories.staff_logged_in(client, session)
    small, _ = queue_statements(client, session, onglet="tous")

    factories.bulk_dossiers(10_000, collectivites=territory, assignees=instructors)
    session.commit()
    large, html = queue_statements(client, session, onglet="tous")
    assert counts(html)["tous"] == 10_003
    assert len(row_ids(html)) == queries.PER_PAGE
    assert any(i.full_name in html for i in instructors)  # assignees shown, eager-loaded
    assert large == small  # independent of the number of rows
    # User, 5 filter menus (labels included), tab counts, rows, the rows' labels and what changed
    # on them since the user last looked (10), plus what the shared layout needs (the
    # notifications badge): a small constant.
    assert large <= 12, large
    # Sorting by a joined column and filtering keep the bound.
    for args in ({"tri": "instructeur", "ordre": "desc"}, {"tri": "demandeur", "q": "dijon"},
                 {"onglet": "mes-dossiers", "epci": "200070894", "page": "3"}):
        n, _ = queue_statements(client, session, **args)
        assert n <= 12, (args, n)
    assert user.role == "instructor"


def test_home_page_shows_the_tab_counts(client, session):
    factories.dossier("received")
    factories.dossier("granted")
    factories.staff_logged_in(client, session, "instructor")
    html = get(client, "/")
    assert counts(html)["a-instruire"] == 1 and counts(html)["decides"] == 1
    assert 'href="/instruction/?onglet=decides"' in html


def test_queue_shows_the_columns(client, session):
    dossier = factories.dossier("eligible", aid=2)
    factories.staff_logged_in(client, session)
    html = get(client)
    row = html[html.index(f'<tr data-dossier="{dossier.id}"'):]
    row = row[:row.index("</tr>")]
    for text in (dossier.reference, "CC de la Plaine Dijonnaise", "EPCI", "Aide 2", "Éligible",
                 "28 novembre 2026", "4\u00a0000,00\u00a0€", "Non attribué"):
        assert text in row, text
    assert dossier.requested_amount == Decimal("4000.00")
