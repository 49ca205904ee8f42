"""Finance's view: the decided and paid tabs show granted, paid and left to pay with totals of the
filtered view (every page), and the finance home shows committed, paid and left per aid."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal

from instruction.dossiers import services
from tests import factories
from tests.factories import NOW

NBSP = "\u00a0"


def cell(html: str, row_marker: str, column: str) -> str:
    row = html[html.index(row_marker):]
    row = row[:row.index("</tr>")]
    value = re.search(rf'data-col="{column}"[^>]*>([^<]*)<', row).group(1)
    return value.replace(NBSP, " ").replace("\u202f", " ").strip()


def money_world():
    """Aid 2 (4,000 € grants): A partly paid 1,000 €, B unpaid, C paid off at 3,000 €; aid 3: D unpaid."""
    finance = factories.staff("finance")
    a, b, c = (factories.dossier("granted") for _ in range(3))
    d = factories.dossier("granted", aid=3)
    services.record_payment(a, finance, amount=Decimal("1000.00"), paid_on=date(2026, 11, 28),
                            reference="A-1", final=False, now=NOW)
    services.record_payment(c, finance, amount=Decimal("3000.00"), paid_on=date(2026, 11, 28),
                            reference="C-1", final=True, now=NOW, confirmed_release=Decimal("1000.00"))
    return a, b, c, d


def test_decided_tab_shows_granted_paid_and_left_with_totals_of_the_filter(client, session):
    a, b, c, d = money_world()
    factories.staff_logged_in(client, session, "finance")
    html = client.get("/instruction/?onglet=decides").get_data(as_text=True)
    assert "Reste à verser" in html and "Montant demandé" not in html
    row = f'<tr data-dossier="{a.id}"'
    assert (cell(html, row, "granted"), cell(html, row, "paid"), cell(html, row, "left")) == \
        ("4 000,00 €", "1 000,00 €", "3 000,00 €")
    totals = 'data-testid="totals"'
    assert (cell(html, totals, "granted"), cell(html, totals, "paid"), cell(html, totals, "left")) == \
        ("12 000,00 €", "1 000,00 €", "11 000,00 €")
    html = client.get("/instruction/?onglet=decides&tri=reste&ordre=desc").get_data(as_text=True)
    assert 'aria-sort="descending"' in html
    assert re.findall(r'<tr data-dossier="(\d+)"', html) == [str(d.id), str(b.id), str(a.id)]
    html = client.get("/instruction/?onglet=decides&aide=2").get_data(as_text=True)
    assert (cell(html, totals, "granted"), cell(html, totals, "paid"), cell(html, totals, "left")) == \
        ("8 000,00 €", "1 000,00 €", "7 000,00 €")


def test_paid_tab_shows_nothing_left_once_the_balance_is_paid(client, session):
    a, b, c, d = money_world()
    factories.staff_logged_in(client, session, "finance")
    html = client.get("/instruction/?onglet=verses").get_data(as_text=True)
    row = f'<tr data-dossier="{c.id}"'
    assert (cell(html, row, "granted"), cell(html, row, "paid"), cell(html, row, "left")) == \
        ("4 000,00 €", "3 000,00 €", "0,00 €")
    totals = 'data-testid="totals"'
    assert (cell(html, totals, "granted"), cell(html, totals, "paid"), cell(html, totals, "left")) == \
        ("4 000,00 €", "3 000,00 €", "0,00 €")


def test_totals_cover_every_page(client, session):
    factories.bulk_dossiers(60, states=("granted",))  # 60 grants, PER_PAGE = 50
    factories.staff_logged_in(client, session, "finance")
    html = client.get("/instruction/?onglet=decides").get_data(as_text=True)
    expected = sum(Decimal(1000 + (i * 37) % 9000) for i in range(60))  # the factory's amounts
    shown = cell(html, 'data-testid="totals"', "granted")
    assert shown.replace(" ", "").replace("€", "").replace(",", ".") == f"{expected:.2f}"


def test_finance_home_shows_committed_paid_and_left_per_aid(client, session):
    money_world()
    factories.staff_logged_in(client, session, "finance")
    html = client.get("/").get_data(as_text=True)
    aid2, aid3, aid1 = '<tr data-aid="2"', '<tr data-aid="3"', '<tr data-aid="1"'
    # Committed: A and B hold their grants (8,000), C what was paid (3,000).
    assert (cell(html, aid2, "committed"), cell(html, aid2, "paid"), cell(html, aid2, "left")) == \
        ("11 000,00 €", "4 000,00 €", "7 000,00 €")
    assert (cell(html, aid3, "committed"), cell(html, aid3, "paid"), cell(html, aid3, "left")) == \
        ("4 000,00 €", "0,00 €", "4 000,00 €")
    assert cell(html, aid1, "committed") == "0,00 €"


def test_the_applicant_sees_the_date_of_the_payment_not_the_day_it_was_typed(client, session):
    dossier = factories.dossier("granted")
    services.record_payment(dossier, factories.staff("finance"), amount=Decimal("1000.00"),
                            paid_on=date(2026, 11, 28), reference="PV-1", final=False,
                            now=datetime(2026, 12, 3, 9, 0, tzinfo=UTC))
    applicant = factories.applicant_of(dossier.collectivite)
    session.commit()
    factories.log_in(client, applicant)
    html = client.get(f"/portail/dossiers/{dossier.id}").get_data(as_text=True).replace(NBSP, " ")
    html = html.replace("\u202f", " ")
    payments = html[html.index('data-testid="payments"'):]
    payments = payments[:payments.index("</section>")]
    assert "28 novembre 2026" in payments and "1 000,00 €" in payments and "3 décembre" not in payments
    assert "Versement de 1 000,00 € (PV-1), versé le 28 novembre 2026" in html
