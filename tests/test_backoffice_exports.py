"""Exports of a queue view: CSV and XLSX read back give the rows and values of the database (the
same filters, tab and sort as the screen), amounts exact to the cent; only staff may export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from openpyxl import load_workbook

from instruction.dossiers import services
from tests import factories
from tests.factories import NOW

AID_1 = "Aide 1 · Mise à niveau de l’équipement et aménagement numérique"
AID_2 = "Aide 2 · Mise en œuvre de solutions assurant la maîtrise et la sécurisation des données"
HEADERS = ["Référence", "Demandeur", "Type de demandeur", "INSEE ou SIREN", "Département", "EPCI",
           "Aide", "État", "Déposé le", "Montant demandé", "Montant calculé", "Attribué", "Versé",
           "Reste à verser", "Décision implicite le", "Instructeur"]
# The view: every tab, submitted from 1 March 2026, sorted by granted amount (ascending).
VIEW = {"onglet": "tous", "depose_du": "2026-03-01", "tri": "attribue"}


def _set(dossier, **values):
    for name, value in values.items():
        setattr(dossier, name, value)


@pytest.fixture
def world(session):
    """Two dossiers in the view (amounts with cents, set by hand), one submitted before it, a draft."""
    granted = factories.dossier("granted", aid=2, grant_amount=Decimal("3999.90"))  # CC de la Plaine Dijonnaise
    paid = factories.dossier("granted", aid=1, grant_amount=Decimal("600.40"))  # Agencourt
    finance = factories.staff("finance")
    # The balance paid below the grant: nothing is left to pay (the 0,40 € went back to the envelope).
    services.record_payment(paid, finance, amount=Decimal("600.00"), paid_on=date(2026, 11, 28),
                            reference="Mandat 11", final=True, confirmed_release=Decimal("0.40"), now=NOW)
    services.record_payment(granted, finance, amount=Decimal("1500.05"),
                            paid_on=date(2026, 11, 28), reference="Mandat 12", final=False, now=NOW)
    early = factories.dossier("received", aid=2)
    draft = factories.dossier("draft", aid=2)
    instructor = factories.user("instructor", full_name="Jeanne Dupont")
    # 22:30 UTC on 31 March is 1 April in Paris (summer time).
    _set(granted, submitted_at=datetime(2026, 3, 31, 22, 30, tzinfo=UTC), requested_amount=Decimal("10000.00"),
         computed_amount=Decimal("8000.10"), assigned_to=instructor)
    _set(paid, submitted_at=datetime(2026, 5, 10, 8, 0, tzinfo=UTC), requested_amount=Decimal("1500.00"),
         computed_amount=Decimal("1200.00"), assigned_to=None)
    _set(early, submitted_at=datetime(2026, 2, 27, 9, 0, tzinfo=UTC), implicit_decision_on=date(2026, 6, 27),
         requested_amount=Decimal("10000.00"))
    session.commit()
    return {"granted": granted, "paid": paid, "early": early, "draft": draft, "instructor": instructor}


def expected_csv(world) -> list[list[str]]:
    return [
        HEADERS,
        [world["paid"].reference, "Agencourt", "Commune", "21001", "21",
         "CC de Gevrey-Chambertin et de Nuits-Saint-Georges", AID_1, "Versé", "10/05/2026",
         "1500,00", "1200,00", "600,40", "600,00", "0,00", "", ""],
        [world["granted"].reference, "CC de la Plaine Dijonnaise", "EPCI", "200000925",
         "21", "CC de la Plaine Dijonnaise", AID_2,
         "Attribué", "01/04/2026", "10000,00", "8000,10", "3999,90", "1500,05", "2499,85", "",
         "Jeanne Dupont"],
    ]


def read_csv(response) -> list[list[str]]:
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    body = response.get_data()
    assert body.startswith(b"\xef\xbb\xbf")  # the BOM: Excel then reads UTF-8
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline=""), delimiter=";"))


def test_csv_of_a_filtered_sorted_view(client, session, world):
    factories.staff_logged_in(client, session, "instructor")
    rows = read_csv(client.get("/instruction/export.csv", query_string=VIEW))
    assert rows == expected_csv(world)


def test_xlsx_of_the_same_view_has_typed_cells(client, session, world):
    factories.staff_logged_in(client, session, "finance")
    response = client.get("/instruction/export.xlsx", query_string=VIEW)
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    workbook = load_workbook(io.BytesIO(response.get_data()))
    assert len(workbook.worksheets) == 1
    sheet = workbook.worksheets[0]
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:P3"
    cells = list(sheet.iter_rows())
    assert [c.value for c in cells[0]] == HEADERS
    expected = expected_csv(world)[1:]
    for row, wanted in zip(cells[1:], expected, strict=True):
        values = [c.value for c in row]
        assert values[:8] == wanted[:8]
        assert values[14:] == [None, wanted[15] or None]  # decided: no implicit decision pending
        submitted = row[8]
        assert submitted.is_date and submitted.value.strftime("%d/%m/%Y") == wanted[8]
        for cell, text in zip(row[9:14], wanted[9:14], strict=True):
            assert isinstance(cell.value, int | float) and "€" in cell.number_format
            assert Decimal(str(cell.value)).quantize(Decimal("0.01")) == Decimal(text.replace(",", "."))
    assert len(cells) == 3


def test_the_queue_links_to_exports_of_the_current_view(client, session, world):
    factories.staff_logged_in(client, session, "admin")
    html = client.get("/instruction/", query_string=VIEW).get_data(as_text=True)
    for name in ("csv", "xlsx"):
        marker = f'data-testid="export-{name}" href="'
        href = html.split(marker, 1)[1].split('"', 1)[0].replace("&amp;", "&")
        url = urlsplit(href)
        assert url.path == f"/instruction/export.{name}"
        assert {k: v[0] for k, v in parse_qs(url.query).items()} == VIEW
    assert read_csv(client.get(href.replace("export.xlsx", "export.csv"))) == expected_csv(world)


def test_an_export_holds_what_its_author_may_see(client, session, world):
    """No draft, ever; "my dossiers" are the author's own."""
    instructor = world["instructor"]
    factories.log_in(client, instructor)
    everything = [r[0] for r in read_csv(client.get("/instruction/export.csv?onglet=tous"))[1:]]
    assert sorted(everything) == sorted(world[k].reference for k in ("granted", "paid", "early"))
    early = next(r for r in read_csv(client.get("/instruction/export.csv?onglet=a-instruire"))[1:]
                 if r[0] == world["early"].reference)
    assert early[7:10] == ["Reçu", "27/02/2026", "10000,00"] and early[11:15] == ["", "", "", "27/06/2026"]
    mine = read_csv(client.get("/instruction/export.csv?onglet=mes-dossiers"))
    assert [r[0] for r in mine[1:]] == [world["granted"].reference]


def test_a_formula_in_a_name_is_exported_as_text(client, session, world):
    world["instructor"].full_name = "=HYPERLINK(\"http://x\")"
    session.commit()
    factories.staff_logged_in(client, session)
    rows = read_csv(client.get("/instruction/export.csv", query_string=VIEW))
    assert rows[2][15] == "'=HYPERLINK(\"http://x\")"
    sheet = load_workbook(io.BytesIO(client.get("/instruction/export.xlsx", query_string=VIEW).get_data())).active
    assert sheet["P3"].data_type == "s" and sheet["P3"].value.startswith("'=")


def test_bad_parameters_are_ignored_as_on_the_queue(client, session, world):
    factories.staff_logged_in(client, session)
    rows = read_csv(client.get("/instruction/export.csv", query_string={**VIEW, "etat": "<script>",
                                                                        "page": "x" * 50}))
    assert rows == expected_csv(world)


@pytest.mark.parametrize("path", ["/instruction/export.csv", "/instruction/export.xlsx"])
def test_an_applicant_cannot_reach_an_export(client, session, world, path):
    factories.log_in(client, factories.applicant_of(world["granted"].collectivite))
    response = client.get(path, query_string={"onglet": "tous"})
    assert response.status_code == 404
    assert world["granted"].reference.encode() not in response.get_data()


@pytest.mark.parametrize("path", ["/instruction/export.csv", "/instruction/export.xlsx"])
def test_anonymous_is_sent_to_login(client, path):
    response = client.get(path)
    assert response.status_code == 302 and "/connexion" in response.headers["Location"]
