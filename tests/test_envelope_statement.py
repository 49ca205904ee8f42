"""The statement of commitments of an EPCI (état des engagements): the envelopes page shows what
is paid beside what is committed, and the XLSX download, read back with openpyxl, gives the
same figures to the cent, every dossier that counts, typed cells, a frozen and filtered header,
and text cells that a spreadsheet cannot run as formulas."""

from __future__ import annotations

import html as html_lib
import re
from datetime import date, datetime
from decimal import Decimal
from io import BytesIO

import openpyxl
import pytest

from instruction.dossiers import services
from tests import factories

NBSP = "\u00a0"
EURO_FORMAT = '#,##0.00 "€"'
LINE_A1 = [{"category": "equipement", "label": "Ordinateur", "amount_ht": "1200.00", "pack": 1}]
HALF = [{"category": "equipement", "label": "Serveur", "amount_ht": "5000.00"}]
URL = "/instruction/epci/200000925/etat-des-engagements.xlsx"


@pytest.fixture
def territory(session):
    """Aid 2 of the CC de la Plaine Dijonnaise (200000925), 40 % of the expenses:
    granted 4,000 (10,000 of expenses), paid 2,000 (5,000), granted 4,000 of which 1,500 paid,
    received 4,000 (pending), refused (counts for nothing); aid 1: a commune whose name starts
    like a formula, granted pack 1 (1,000); and a dossier of another EPCI."""
    epci = factories.epci("200000925")
    tart = factories.commune("21622")
    tart.name = "=1+1 Tart"
    d = {
        "granted": factories.dossier("granted", aid=2, collectivite=epci),
        "paid": factories.dossier("paid", aid=2, collectivite=epci, lines=HALF),
        "partly_paid": factories.dossier("granted", aid=2, collectivite=epci),
        "pending": factories.dossier("received", aid=2, collectivite=epci),
        "refused": factories.dossier("refused", aid=2, collectivite=epci),
        "a1": factories.dossier("granted", aid=1, collectivite=tart, lines=LINE_A1),
        "elsewhere": factories.dossier("granted", aid=2, collectivite=factories.epci("200070894")),
    }
    services.record_payment(d["partly_paid"], factories.staff("finance"), amount=Decimal("1500.00"),
                            paid_on=date(2026, 11, 28), reference="MANDAT-ACOMPTE-1", final=False,
                            now=factories.NOW)
    session.commit()
    return d


def _page(client) -> str:
    response = client.get("/instruction/epci/200000925")
    assert response.status_code == 200
    return html_lib.unescape(response.get_data(as_text=True)).replace(NBSP, " ")


def _workbook(client, **args) -> openpyxl.Workbook:
    response = client.get(URL, query_string=args)
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert "etat-des-engagements-200000925-demo-2026-11-28.xlsx" in response.headers["Content-Disposition"]
    return openpyxl.load_workbook(BytesIO(response.data))


def _cents(value) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def test_the_page_shows_what_is_paid_and_links_the_statement(client, session, territory, monkeypatch):
    monkeypatch.setattr("instruction.clock.now", lambda: factories.NOW)
    factories.staff_logged_in(client, session)
    page = _page(client)
    start = page.index('data-scope="epci:200000925"')
    block = page[start:page.index("</table>", start)]
    found = dict(re.findall(r'data-figure="([\w-]+)">(.*?)</td>', block, re.S))
    figures = {k: re.sub(r"<[^>]+>|\(\d+\)", "", v).strip() for k, v in found.items()}
    assert figures == {"limit": "30 000,00 €", "consumed": "10 000,00 €", "paid": "3 500,00 €",
                       "pending": "4 000,00 €", "remaining": "20 000,00 €", "after-pending": "16 000,00 €"}
    assert "/instruction/epci/200000925/etat-des-engagements.xlsx?campagne=demo" in page


def test_the_statement_reads_back_to_the_cent(client, session, territory, monkeypatch):
    monkeypatch.setattr("instruction.clock.now", lambda: factories.NOW)
    factories.staff_logged_in(client, session, "finance")
    book = _workbook(client)
    assert book.sheetnames == ["Enveloppes", "Dossiers"]

    envelopes = book["Enveloppes"]
    rows = list(envelopes.iter_rows(values_only=True))
    assert rows[0] == ("Aide", "Intitulé de l'aide", "Enveloppe", "Plafond", "Engagé", "Versé",
                       "Demandes en attente", "Nombre de demandes en attente", "Disponible",
                       "Disponible après les demandes", "Dossiers comptant")
    by_aid = {(r[0], r[2]): r for r in rows[1:]}
    # aid 1 per commune (only Tart has a dossier), aids 2 to 5 for the EPCI
    assert sorted(by_aid) == [(1, "Commune de =1+1 Tart (21622)"), (2, "CC de la Plaine Dijonnaise"),
                              (3, "CC de la Plaine Dijonnaise"), (4, "CC de la Plaine Dijonnaise"),
                              (5, "CC de la Plaine Dijonnaise")]
    a2 = by_aid[(2, "CC de la Plaine Dijonnaise")]
    assert [_cents(v) for v in a2[3:7]] == [Decimal("30000.00"), Decimal("10000.00"), Decimal("3500.00"),
                                             Decimal("4000.00")]
    assert a2[7] == 1 and a2[10] == 4  # one pending; granted, paid, partly paid and pending count
    assert [_cents(v) for v in a2[8:10]] == [Decimal("20000.00"), Decimal("16000.00")]
    a1 = by_aid[(1, "Commune de =1+1 Tart (21622)")]
    assert [_cents(v) for v in a1[3:6]] == [Decimal("2500.00"), Decimal("1000.00"), Decimal("0.00")]
    a3 = by_aid[(3, "CC de la Plaine Dijonnaise")]
    assert _cents(a3[4]) == Decimal("0.00") and a3[10] == 0

    cells = next(envelopes.iter_rows(min_row=2, max_row=2))
    assert [c.number_format for c in cells[3:7]] == [EURO_FORMAT] * 4
    assert envelopes.freeze_panes == "A2"
    assert envelopes.auto_filter.ref == "A1:K6"

    listed = book["Dossiers"]
    rows = list(listed.iter_rows(values_only=True))
    assert rows[0] == ("Aide", "Enveloppe", "Référence", "Demandeur", "Type de demandeur", "État",
                       "Déposé le", "Montant demandé", "Montant calculé", "Attribué", "Versé")
    by_reference = {r[2]: r for r in rows[1:]}
    assert set(by_reference) == {territory[k].reference for k in ("granted", "paid", "partly_paid", "pending", "a1")}
    paid = by_reference[territory["paid"].reference]
    assert paid[5] == "Versé" and _cents(paid[9]) == Decimal("2000.00") and _cents(paid[10]) == Decimal("2000.00")
    partly = by_reference[territory["partly_paid"].reference]
    assert partly[5] == "Attribué" and _cents(partly[9]) == Decimal("4000.00") and _cents(partly[10]) == Decimal("1500.00")
    pending = by_reference[territory["pending"].reference]
    assert pending[9] is None and pending[10] is None and _cents(pending[7]) == Decimal("4000.00")
    assert isinstance(pending[6], datetime) and pending[6].date() == date(2026, 11, 28)
    # A name starting like a formula is quoted: the spreadsheet shows it, never runs it.
    assert by_reference[territory["a1"].reference][3] == "'=1+1 Tart"
    first = next(listed.iter_rows(min_row=2, max_row=2))
    assert first[6].number_format == "DD/MM/YYYY" and first[7].number_format == EURO_FORMAT
    assert listed.freeze_panes == "A2" and listed.auto_filter.ref == "A1:K6"


def test_the_statement_follows_the_campaign_asked(client, session, territory, monkeypatch):
    monkeypatch.setattr("instruction.clock.now", lambda: factories.NOW)
    factories.staff_logged_in(client, session)
    response = client.get(URL, query_string={"campagne": "pair-2021"})
    assert response.status_code == 200
    book = openpyxl.load_workbook(BytesIO(response.data))
    assert list(book["Dossiers"].iter_rows(min_row=2, values_only=True)) == []
    a2 = next(r for r in book["Enveloppes"].iter_rows(min_row=2, values_only=True) if r[0] == 2)
    assert _cents(a2[4]) == Decimal("0.00") and a2[10] == 0


def test_unknown_epci_and_applicant(client, session, territory):
    factories.staff_logged_in(client, session)
    assert client.get("/instruction/epci/000000000/etat-des-engagements.xlsx").status_code == 404
    client.post("/deconnexion")
    applicant = factories.applicant_of(factories.epci("200000925"))
    session.commit()
    factories.log_in(client, applicant)
    assert client.get(URL).status_code == 404  # not told the export exists
