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
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from typing import IO, Any, NamedTuple

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from sqlalchemy import Select, case, literal, tuple_

from instruction.backoffice.queries import (
    LEFT_TO_PAY,
    NEVER_EMPTY_SORTS,
    SORTS,
    Assignee,
    QueueFilters,
    columns_select,
)
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


def export_row(values, aids: dict[int, str]) -> ExportRow:
    """One row of ``export_select`` (its first 16 columns) as the export shows it."""
    (reference, name, kind, code, departement, epci, aid, state, submitted, requested, computed,
     granted, paid, left, implicit_decision, instructor) = values[:16]
    return ExportRow(
        reference=reference or "", applicant=name, kind=KIND_LABELS[kind], code=code or "",
        departement=departement or "", epci=epci or "",
        aid=f"Aide {aid} · {aids[aid]}" if aid in aids else f"Aide {aid}",
        state=STATE_LABELS[state], submitted=paris_date(submitted) if submitted else None,
        requested=_cents(requested), computed=_cents(computed), granted=_cents(granted),
        paid=_cents(paid), left=_cents(left) if granted is not None else None,
        implicit_decision=implicit_decision, instructor=instructor or "",
    )


def export_rows(f: QueueFilters, aids: dict[int, str]) -> Iterator[ExportRow]:
    """The rows of the view, fetched ``BATCH`` at a time (one query, one transaction)."""
    result = db.session.execute(export_select(f).execution_options(yield_per=BATCH))
    for values in result:
        yield export_row(values, aids)


def _nulls_first(f: QueueFilters) -> bool:
    """Where the view's order puts empty sort keys: last, said explicitly, except for the keys
    the queue takes as never empty (an expired draft has no submission date, though), which
    follow the database's default (PostgreSQL: last ascending, first descending)."""
    if f.sort not in NEVER_EMPTY_SORTS:
        return False
    postgresql = db.session.get_bind().dialect.name == "postgresql"
    return f.descending if postgresql else not f.descending


def export_rows_in_batches(f: QueueFilters, aids: dict[int, str], *, batch: int = BATCH,
                           after_batch: Callable[[int], None] | None = None) -> Iterator[ExportRow]:
    """The same rows in the same order, each batch a query of its own that starts after the last
    row of the previous one (keyset on (sort key, id), a range of an index for the default
    order; the rows with an empty key are read apart, where the order puts them). No cursor
    stays open, so ``after_batch(rows so far)``, called between batches, may commit (the worker
    records its progress)."""
    column: Any = SORTS[f.sort][1]
    statement = export_select(f).add_columns(column.label("sort_key"), Dossier.id.label("row_id"))
    phases = (True, False) if _nulls_first(f) else (False, True)
    done = 0
    for empty in phases:
        phase = statement.where(column.is_(None) if empty else column.is_not(None))
        last: tuple | None = None
        while True:
            query = phase
            if last is not None and empty:
                query = phase.where(Dossier.id < last[1] if f.descending else Dossier.id > last[1])
            elif last is not None:
                pair, after = tuple_(column, Dossier.id), tuple_(literal(last[0], column.type), literal(last[1]))
                query = phase.where(pair < after if f.descending else pair > after)
            rows = db.session.execute(query.limit(batch)).all()
            for values in rows:
                yield export_row(values, aids)
            done += len(rows)
            if after_batch is not None:
                after_batch(done)
            if len(rows) < batch:
                break
            last = (rows[-1].sort_key, rows[-1].row_id)


def spreadsheet_text(value: str) -> str:
    """A text cell a spreadsheet will not run as a formula (quoted when it starts like one);
    every spreadsheet the application writes goes through it."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


_text = spreadsheet_text


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


def write_xlsx(rows: Iterator[ExportRow], title: str, output: IO[bytes] | None = None) -> IO[bytes]:
    """One sheet, header frozen and filtered, typed cells; written to ``output`` (by default a
    temporary file, gone once closed), returned at its start."""
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
    if output is None:
        output = tempfile.TemporaryFile()
    workbook.save(output)
    output.seek(0)
    return output
