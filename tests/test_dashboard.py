"""The dashboard (/tableau-de-bord): figures computed by hand on a small world, the filters by
campaign and département, and the same sums as the queue's CSV export with the same filters.

The world (demo campaign; T0 = 2 November 2026, 10:00 UTC; "now" = 28 November 2026):

| dossier | aid | applicant (département) | state | requested | granted | paid | submitted → decided |
|---|---|---|---|---|---|---|---|
| D1 | 2 | CC Plaine Dijonnaise (21) | paid | 4,000.00 | 4,000.00 | 4,000.00 | T0 → T0 + 48 h |
| D2 | 2 | CC Gevrey-Chambertin (21) | refused | 4,000.00 | | | T0 → T0 + 24 h |
| D3 | 4 | Aiserey (21), of the Plaine Dijonnaise | granted | 4,800.00 | 4,321.09 | | T0 → T0 + 100 h |
| D4 | 1 | Tart-le-Bas (21) | received, Alice | 1,000.00 | | | now |
| D5 | 2 | CC Plaine Dijonnaise (21) | incomplete, nobody | 4,000.00 | | | now |
| D6 | 3 | CC Haut-Jura Saint-Claude (39) | ineligible | 4,000.00 | | | T0 → T0 + 6 h |
| D7 | 3 | CC Haut-Jura Saint-Claude (39) | received, Bruno | 4,000.00 | | | now |
| D8 | 2 | CC Plaine Dijonnaise, campaign pair-2021 | granted | 4,000.00 | 4,000.00 | | 2021 |
| D9 | 2 | CC Plaine Dijonnaise | draft (never counted) | | | | |
"""

from __future__ import annotations

import csv
import html as html_lib
import io
import re
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from instruction.dossiers import services
from tests import factories

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
NOW = factories.NOW
AID_1 = [{"category": "equipement", "label": "Ordinateur", "amount_ht": "1200.00", "pack": 1}]
SPACES = ("\u00a0", "\u202f", " ")


@pytest.fixture
def world(session, monkeypatch):
    monkeypatch.setattr("instruction.clock.now", lambda: NOW)
    plaine, gevrey, jura = (factories.epci(s) for s in ("200000925", "200070894", "200026573"))
    instructor, finance = factories.staff("instructor"), factories.staff("finance")
    alice = factories.user("instructor", full_name="Alice Martin")
    bruno = factories.user("instructor", full_name="Bruno Petit")

    d1 = factories.dossier("received", aid=2, collectivite=plaine, now=T0)
    services.declare_eligible(d1, instructor, now=T0 + timedelta(hours=1))
    services.grant(d1, instructor, now=T0 + timedelta(hours=48))
    services.record_payment(d1, finance, amount=Decimal("4000.00"), paid_on=date(2026, 11, 5),
                            reference="MANDAT-TDB-1", final=True, now=T0 + timedelta(hours=72))
    d2 = factories.dossier("received", aid=2, collectivite=gevrey, now=T0)
    services.refuse(d2, instructor, "Projet hors du champ de l'aide", now=T0 + timedelta(hours=24))
    d3 = factories.dossier("received", aid=4, collectivite=factories.commune("21005"), now=T0)
    services.declare_eligible(d3, instructor, now=T0 + timedelta(hours=10))
    services.grant(d3, instructor, Decimal("4321.09"), now=T0 + timedelta(hours=100))
    d4 = factories.dossier("received", aid=1, collectivite=factories.commune("21622"), lines=AID_1)
    services.assign(d4, alice, now=NOW)
    d5 = factories.dossier("received", aid=2, collectivite=plaine)
    services.request_documents(d5, instructor, "Merci de joindre le devis signé.", now=NOW)
    d6 = factories.dossier("received", aid=3, collectivite=jura, now=T0)
    services.declare_ineligible(d6, instructor, "Dépense déjà financée", now=T0 + timedelta(hours=6))
    d7 = factories.dossier("received", aid=3, collectivite=jura)
    services.assign(d7, bruno, now=NOW)
    d8 = factories.dossier("granted", aid=2, collectivite=plaine, campaign_code="pair-2021",
                           now=datetime(2021, 6, 1, 10, 0, tzinfo=UTC))
    d9 = factories.dossier("draft", aid=2, collectivite=plaine)
    session.commit()
    assert (d1.state, d2.state, d3.state, d5.state, d6.state) == ("paid", "refused", "granted", "incomplete", "ineligible")
    return {"alice": alice, "bruno": bruno, "d8": d8, "d9": d9}


def _get(client, **args) -> str:
    response = client.get("/tableau-de-bord", query_string=args)
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    return html_lib.unescape(response.get_data(as_text=True))


def _amount(text: str) -> Decimal:
    for space in SPACES:
        text = text.replace(space, "")
    return Decimal(text.replace("€", "").replace(",", "."))


def _rows(page: str, table: str, key: str) -> dict[str, dict[str, str]]:
    """``{row key: {figure: text}}`` of the table ``data-table=table``, rows keyed by ``data-key``."""
    start = page.index(f'data-table="{table}"')
    body = page[start:page.index("</table>", start)]
    rows = {}
    for row_key, row in re.findall(rf'<tr data-{key}="([^"]+)"[^>]*>(.*?)</tr>', body, re.S):
        rows[row_key] = {name: re.sub(r"<[^>]+>", "", value).strip()
                         for name, value in re.findall(r'data-figure="([\w-]+)">(.*?)</td>', row, re.S)}
    return rows


def test_figures_of_the_world(client, session, world):
    factories.staff_logged_in(client, session)
    page = _get(client)
    for heading in ("Tableau de bord", "Montants par aide", "EPCI les plus proches de leur plafond",
                    "Dossiers par état", "Dossiers par département", "Délai de traitement",
                    "Dossiers en cours par instructeur"):
        assert f">{heading}</h" in page

    aids = _rows(page, "aids", "aid")
    money = {k: {n: _amount(v) for n, v in r.items() if n not in ("count", "share")} for k, r in aids.items()}
    assert money["2"] == {"requested": Decimal("12000.00"), "granted": Decimal("4000.00"), "paid": Decimal("4000.00"),
                          "committed": Decimal("4000.00"), "programme": Decimal("1500000.00")}
    assert money["4"] == {"requested": Decimal("4800.00"), "granted": Decimal("4321.09"), "paid": Decimal("0.00"),
                          "committed": Decimal("4321.09"), "programme": Decimal("2000000.00")}
    assert money["1"]["requested"] == Decimal("1000.00") and money["3"]["requested"] == Decimal("8000.00")
    assert money["5"]["requested"] == Decimal("0.00")
    assert money["total"] == {"requested": Decimal("25800.00"), "granted": Decimal("8321.09"),
                              "paid": Decimal("4000.00"), "committed": Decimal("8321.09"),
                              "programme": Decimal("6500000.00")}
    assert [aids[k]["count"] for k in ("1", "2", "3", "4", "5", "total")] == ["1", "3", "2", "1", "0", "7"]
    # 4,000 / 1,500,000 = 0.27 %; 4,321.09 / 2,000,000 = 0.22 %; 8,321.09 / 6,500,000 = 0.13 %
    assert [aids[k]["share"].replace("\u00a0", " ") for k in ("1", "2", "4", "total")] == \
        ["0 %", "0,27 %", "0,22 %", "0,13 %"]

    states = {k: int(v["count"]) for k, v in _rows(page, "states", "state").items()}
    assert states == {"received": 2, "incomplete": 1, "granted": 1, "paid": 1, "ineligible": 1, "refused": 1}

    departements = _rows(page, "departements", "departement")
    assert {k: (v["count"], _amount(v["requested"]), _amount(v["granted"]), _amount(v["paid"]))
            for k, v in departements.items()} == {
        "21": ("5", Decimal("17800.00"), Decimal("8321.09"), Decimal("4000.00")),
        "39": ("2", Decimal("8000.00"), Decimal("0.00"), Decimal("0.00"))}

    # Decided: 6 h, 24 h, 48 h, 100 h -> median (24 + 48) / 2 = 36 h, 90th percentile the 4th = 100 h.
    processing = _rows(page, "processing", "figure-row")
    assert processing["decided"]["decided"] == "4"
    assert processing["median"]["median"] == "36,0 h (1,5 j)"
    assert processing["p90"]["p90"] == "100,0 h (4,2 j)"

    start = page.index('data-table="closest"')
    closest = re.findall(r'<tr data-scope="([^"]+)" data-aid="(\d)">.*?data-figure="share">([^<]+)<',
                         page[start:page.index("</table>", start)], re.S)
    assert [(s, a, p.replace("\u00a0", " ")) for s, a, p in closest] == [
        ("epci:200000925", "2", "13,33 %"),  # 4,000 of 30,000
        ("epci-territoire:200000925", "4", "10,8 %"),  # 4,321.09 of 40,000
        ("epci:200026573", "3", "0 %")]  # only a pending demand; a refused dossier is not listed

    backlog = _rows(page, "backlog", "instructor")
    assert {k: (v["to-instruct"], v["waiting"]) for k, v in backlog.items()} == {
        str(world["alice"].id): ("1", "0"), str(world["bruno"].id): ("1", "0"), "aucun": ("0", "1")}
    assert page.index("Alice Martin") < page.index("Bruno Petit") < page.index("Non attribués")


def test_charts_are_drawn_by_the_server(client, session, world):
    factories.staff_logged_in(client, session, "finance")
    response = client.get("/tableau-de-bord")
    page = response.get_data(as_text=True)
    for chart in ("graphique-aides", "graphique-programme", "graphique-plafonds", "graphique-etats",
                  "graphique-departements", "graphique-instructeurs"):
        assert f'data-chart="{chart}"' in page
    assert re.findall(r"<script(?![^>]*\bsrc=)", page) == []  # no inline script
    assert " style=" not in page  # the CSP forbids inline style
    assert "https://" not in page.split("<body", 1)[1]  # no CDN
    assert page.count('<th scope="col"') >= 20 and "<caption>" in page
    # the longest bar of the amounts chart is the largest amount (requested for aid 2: 12,000)
    bars = [float(w) for w in re.findall(r'<rect x="250" y="\d+" width="([\d.]+)" height="14"',
                                         page.split('data-chart="graphique-aides"')[1].split("</svg>")[0])]
    assert max(bars) == 360.0 and len(bars) == 15


def test_filter_by_departement(client, session, world):
    factories.staff_logged_in(client, session)
    page = _get(client, departement="39")
    aids = _rows(page, "aids", "aid")
    assert aids["3"]["count"] == "2" and _amount(aids["3"]["requested"]) == Decimal("8000.00")
    assert aids["2"]["count"] == "0" and aids["total"]["count"] == "2"
    assert {k: int(v["count"]) for k, v in _rows(page, "states", "state").items()} == {"received": 1, "ineligible": 1}
    assert list(_rows(page, "departements", "departement")) == ["39"]
    assert _rows(page, "processing", "figure-row")["median"]["median"] == "6,0 h (0,3 j)"
    assert list(_rows(page, "backlog", "instructor")) == [str(world["bruno"].id)]
    page = _get(client, departement="21")
    # Decided in the 21: 24 h, 48 h, 100 h -> median 48 h, 90th percentile the 3rd (100 h)
    processing = _rows(page, "processing", "figure-row")
    assert processing["median"]["median"] == "48,0 h (2,0 j)" and processing["p90"]["p90"] == "100,0 h (4,2 j)"


def test_filter_by_campaign_and_bad_values(client, session, world):
    factories.staff_logged_in(client, session)
    page = _get(client, campagne="pair-2021")
    aids = _rows(page, "aids", "aid")
    assert aids["total"]["count"] == "1" and _amount(aids["2"]["granted"]) == Decimal("4000.00")
    assert _rows(page, "states", "state") == {"granted": {"count": "1"}}
    page = _get(client, campagne="nulle-part", departement="99x")
    assert "Campagne « nulle-part » inconnue : campagne en cours affichée." in page
    assert "Département « 99x » inconnu : filtre ignoré." in page
    assert _rows(page, "aids", "aid")["total"]["count"] == "7"  # the demo campaign, every département


def _export(client, page: str) -> list[dict[str, str]]:
    url = html_lib.unescape(re.search(r'href="([^"]+)" data-testid="dashboard-export-csv"', page).group(1))
    response = client.get(url)
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:]), delimiter=";"))


def _csv_amount(text: str) -> Decimal:
    return Decimal(text.replace(",", ".")) if text else Decimal("0.00")


@pytest.mark.parametrize("args", [{}, {"departement": "21"}, {"departement": "39"}, {"campagne": "pair-2021"}])
def test_the_dashboard_sums_are_the_exports_sums(client, session, world, args):
    """The CSV export linked from the dashboard, with the same filters, summed here: the same
    counts and amounts to the cent, per aid, per state and per département."""
    factories.staff_logged_in(client, session, "finance")
    page = _get(client, **args)
    rows = _export(client, page)
    assert rows, "the export lists the dossiers of the dashboard"

    sums: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: Decimal("0.00")))
    counts: Counter = Counter()
    for row in rows:
        aid = row["Aide"].split(" ")[1]
        counts[aid] += 1
        for column, figure in (("Montant demandé", "requested"), ("Attribué", "granted"), ("Versé", "paid")):
            sums[aid][figure] += _csv_amount(row[column])
            sums["total"][figure] += _csv_amount(row[column])
    counts["total"] = len(rows)
    dashboard_aids = _rows(page, "aids", "aid")
    for aid, figures in dashboard_aids.items():
        assert int(figures["count"]) == counts[aid], aid
        for figure in ("requested", "granted", "paid"):
            assert _amount(figures[figure]) == sums[aid][figure], (aid, figure)

    labels = {"received": "Reçu", "incomplete": "Pièces demandées", "eligible": "Éligible", "granted": "Attribué",
              "paid": "Versé", "ineligible": "Inéligible", "refused": "Refusé", "withdrawn": "Retiré",
              "expired": "Expiré"}
    states = {labels[k]: int(v["count"]) for k, v in _rows(page, "states", "state").items()}
    assert states == dict(Counter(row["État"] for row in rows))

    by_departement: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 4)
    for row in rows:
        figures = by_departement[row["Département"]]
        figures[0] += 1
        figures[1] += _csv_amount(row["Montant demandé"])
        figures[2] += _csv_amount(row["Attribué"])
        figures[3] += _csv_amount(row["Versé"])
    shown = {k: [Decimal(v["count"]), _amount(v["requested"]), _amount(v["granted"]), _amount(v["paid"])]
             for k, v in _rows(page, "departements", "departement").items()}
    assert shown == dict(by_departement)


def test_navigation_links_the_dashboard(client, session, world):
    factories.staff_logged_in(client, session)
    assert 'href="/tableau-de-bord">Tableau de bord</a>' in client.get("/instruction/").get_data(as_text=True)


def test_the_queue_and_its_export_take_the_campaign(client, session, world):
    """The filter the dashboard passes on to the queue and its exports: only the campaign's dossiers."""
    factories.staff_logged_in(client, session)
    page = client.get("/instruction/", query_string={"onglet": "tous", "campagne": "pair-2021"}).get_data(as_text=True)
    assert world["d8"].reference in page
    rows = list(csv.DictReader(io.StringIO(client.get(
        "/instruction/export.csv", query_string={"onglet": "tous", "campagne": "pair-2021"}).get_data(as_text=True)[1:]),
        delimiter=";"))
    assert [r["Référence"] for r in rows] == [world["d8"].reference]
    page = html_lib.unescape(client.get("/instruction/", query_string={"onglet": "tous", "campagne": "zzz"})
                             .get_data(as_text=True))
    assert "Campagne « zzz » inconnue : filtre ignoré." in page


def test_processing_time_is_elapsed_hours_across_the_change_of_time(client, session, monkeypatch):
    """Submitted on Saturday 24 October 2026 at 12:00 in Paris (10:00 UTC), granted on Monday 26 at
    11:00 in Paris (10:00 UTC): the clocks went back one hour on the Sunday, 48 hours elapsed
    (the Paris wall clocks differ by 47)."""
    monkeypatch.setattr("instruction.clock.now", lambda: NOW)
    submitted = datetime(2026, 10, 24, 10, 0, tzinfo=UTC)
    d = factories.dossier("received", aid=2, collectivite=factories.epci("200000925"), now=submitted)
    services.declare_eligible(d, factories.staff("instructor"), now=submitted)
    services.grant(d, factories.staff("instructor"), now=datetime(2026, 10, 26, 10, 0, tzinfo=UTC))
    session.commit()
    factories.staff_logged_in(client, session)
    processing = _rows(_get(client), "processing", "figure-row")
    assert processing["median"]["median"] == "48,0 h (2,0 j)" and processing["decided"]["decided"] == "1"


def test_a_campaign_without_dossiers_says_so_instead_of_empty_tables(client, session):
    factories.staff_logged_in(client, session)
    page = _get(client)
    assert "Aucun dossier en attente, attribué ou versé pour une enveloppe d'EPCI." in page
    assert page.count("Aucun dossier déposé.") == 2  # by state, by département
    assert "Aucun dossier en cours d'instruction." in page
    for table in ("closest", "states", "departements", "backlog"):
        assert f'data-table="{table}"' not in page
    assert _rows(page, "aids", "aid")["total"]["count"] == "0"
    processing = _rows(page, "processing", "figure-row")
    assert processing["decided"]["decided"] == "0" and processing["median"]["median"] == "—"
