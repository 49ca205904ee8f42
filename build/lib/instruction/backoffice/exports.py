"""Exports of a queue view (CSV and XLSX): the same filters, search, sort and tab as the screen.

Rows are read as plain columns (no ORM object per dossier) in batches (``yield_per``: a
server-side cursor on PostgreSQL), so memory stays flat whatever the number of rows. The CSV is
written for French spreadsheets (UTF-8 with BOM, ``;``, decimal comma, ``31/12/2021``) and streamed;
the XLSX is built by openpyxl in write-only mode into a temporary file, then sent.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import IO, Any, NamedTuple

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from sqlalchemy import Select, case

from instruction.backoffice.queries import LEFT_TO_PAY, Assignee, QueueFilters, columns_select
from instruction.dossiers.models import STATE_LABELS, Dossier
from instruction.extensions import db
from instruction.rules.parameters import paris_date
from instruction.territory.models import KIND_LABELS, Collectivite

BATCH = 1000
HEADERS = ("Référence", "Demandeur", "Type de demandeur", "INSEE ou SIREN", "Département", "EPCI",
           "Aide", "État", "Déposé le", "Montant demandé", "Montant calculé", "Attribué", "Versé",
           "Reste à verser", "Décision implicite le", "Instructeur")
EURO_FORMAT = '#,##0.00 "€"'
DATE_FORMAT = "DD/MM/YYYY"
# A text cell starting with one of these is a formula to a spreadsheet: it is exported quoted.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

_epci_of = Collectivite.__table__.alias("epci_of")


class ExportRow(NamedTuple):
    reference: str
    applicant: str
    kind: str
    code: str
    departement: str
    epci: str
    aid: str
    state: str
    submitted: date | None
    requested: Decimal | None
    computed: Decimal | None
    granted: Decimal | None
    paid: Decimal | None
    left: Decimal | None
    implicit_decision: date | None
    instructor: str


def export_select(f: QueueFilters) -> Select:
    # An EPCI is its own territory; a commune or a SIVOS belongs to one (or to none).
    epci_name = case((Collectivite.kind == "epci", Collectivite.name), else_=_epci_of.c.name)
    code = case((Collectivite.kind == "commune", Collectivite.insee), else_=Collectivite.siren)
    return columns_select(
        f, Dossier.reference, Collectivite.name, Collectivite.kind, code, Collectivite.departement_code,
        epci_name, Dossier.aid_number, Dossier.state, Dossier.submitted_at, Dossier.requested_amount,
        Dossier.computed_amount, Dossier.granted_amount, Dossier.paid_amount, LEFT_TO_PAY,
        Dossier.implicit_decision_on, Assignee.full_name,
    ).outerjoin(_epci_of, _epci_of.c.id == Collectivite.epci_id)


def _cents(value) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(Decimal("0.01"))


def export_rows(f: QueueFilters, aids: dict[int, str]) -> Iterator[ExportRow]:
    """The rows of the view, fetched ``BATCH`` at a time."""
    result = db.session.execute(export_select(f).execution_options(yield_per=BATCH))
    for (reference, name, kind, code, departement, epci, aid, state, submitted, requested, computed,
         granted, paid, left, implicit_decision, instructor) in result:
        yield ExportRow(
            reference=reference or "", applicant=name, kind=KIND_LABELS[kind], code=code or "",
            departement=departement or "", epci=epci or "",
            aid=f"Aide {aid} · {aids[aid]}" if aid in aids else f"Aide {aid}",
            state=STATE_LABELS[state], submitted=paris_date(submitted) if submitted else None,
            requested=_cents(requested), computed=_cents(computed), granted=_cents(granted),
            paid=_cents(paid), left=_cents(left) if granted is not None else None,
            implicit_decision=implicit_decision, instructor=instructor or "",
        )


def _text(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


# --- CSV -----------------------------------------------------------------------------------------


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:.2f}".replace(".", ",")
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    return _text(str(value))


def csv_lines(rows: Iterator[ExportRow]) -> Iterator[str]:
    """The CSV, one line at a time (the first one opens with the BOM)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")

    def line(values) -> str:
        writer.writerow(values)
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    yield "\ufeff" + line(HEADERS)
    for row in rows:
        yield line([_csv_value(v) for v in row])


# --- XLSX ----------------------------------------------------------------------------------------

_MONEY_FIELDS = {"requested", "computed", "granted", "paid", "left"}
_WIDTHS = (16, 36, 12, 14, 8, 36, 30, 20, 12, 16, 16, 14, 14, 14, 12, 24)


def write_xlsx(rows: Iterator[ExportRow], title: str) -> IO[bytes]:
    """One sheet, header frozen and filtered, typed cells; returned as a temporary file at its
    start (gone once closed)."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title[:31])
    for index, width in enumerate(_WIDTHS):
        sheet.column_dimensions[chr(ord("A") + index)].width = width
    sheet.freeze_panes = "A2"
    sheet.append(HEADERS)
    count = 0
    for row in rows:
        cells = []
        for name, value in zip(ExportRow._fields, row, strict=True):
            if isinstance(value, str):
                value = _text(value)
            cell = WriteOnlyCell(sheet, value=value)
            if name in _MONEY_FIELDS:
                cell.number_format = EURO_FORMAT
            elif name in ("submitted", "implicit_decision"):
                cell.number_format = DATE_FORMAT
            cells.append(cell)
        sheet.append(cells)
        count += 1
    sheet.auto_filter.ref = f"A1:{chr(ord('A') + len(HEADERS) - 1)}{count + 1}"
    output = tempfile.TemporaryFile()
    workbook.save(output)
    output.seek(0)
    return output
