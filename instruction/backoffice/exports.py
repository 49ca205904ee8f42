"""Exports of a queue view (CSV and XLSX): the same filters, search, sort and tab as the screen.

Rows are read as plain columns (no ORM object per dossier) in batches (``yield_per``: a
server-side cursor on PostgreSQL), so memory stays flat whatever the number of rows. The CSV is
written for French spreadsheets (UTF-8 with BOM, ``;``, decimal comma, ``31/12/2021``) and streamed;
the XLSX is streamed row by row into a temporary file (``write_xlsx``), then sent.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from typing import IO, Any, NamedTuple
from xml.sax.saxutils import escape

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
            if rows and after_batch is not None:
                after_batch(done)
            if len(rows) < batch:
                break
            last = (rows[-1].sort_key, rows[-1].row_id)
    if after_batch is not None:
        after_batch(done)  # the end, whether the last batch was full or not


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
    """One sheet, header frozen and filtered, typed cells (amounts as numbers with a euro format,
    dates as dates); written to ``output`` (by default a temporary file, gone once closed),
    returned at its start.

    The sheet's XML is streamed into the zip row by row (SpreadsheetML written here, inline
    strings): memory stays flat and 100,000 rows take seconds, where openpyxl's write-only mode
    builds an object per cell (bench/README.md). Read back by openpyxl in the tests."""
    if output is None:
        output = tempfile.TemporaryFile()
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED) as package:
        with package.open("xl/worksheets/sheet1.xml", "w") as sheet:
            sheet.write(_SHEET_START.encode())
            sheet.write(_xlsx_row(1, HEADERS, header=True).encode())
            count, chunk = 0, []
            for row in rows:
                count += 1
                chunk.append(_xlsx_row(count + 1, row))
                if len(chunk) >= 500:
                    sheet.write("".join(chunk).encode())
                    chunk.clear()
            sheet.write("".join(chunk).encode())
            last = f"{_COLUMNS[len(HEADERS) - 1]}{count + 1}"
            sheet.write(f'</sheetData><autoFilter ref="A1:{last}"/></worksheet>'.encode())
        name = _xml(title[:31]) or "Feuille 1"
        quoted = name.replace("'", "''")
        package.writestr("[Content_Types].xml", _CONTENT_TYPES)
        package.writestr("_rels/.rels", _ROOT_RELS)
        package.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        package.writestr("xl/styles.xml", _STYLES)
        package.writestr("xl/workbook.xml", (
            f'{_XML}<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><sheets>'
            f'<sheet name="{name}" sheetId="1" r:id="rId1"/></sheets><definedNames>'
            f'<definedName name="_xlnm._FilterDatabase" localSheetId="0" hidden="1">'
            f"'{quoted}'!$A$1:${_COLUMNS[len(HEADERS) - 1]}${count + 1}</definedName></definedNames></workbook>"))
    output.seek(0)
    return output


_COLUMNS = [chr(ord("A") + i) for i in range(len(HEADERS))]
_DATE_FIELDS = {"submitted", "implicit_decision"}
_STYLE_OF = {name: ' s="1"' if name in _MONEY_FIELDS else ' s="2"' if name in _DATE_FIELDS else ""
             for name in ExportRow._fields}
_EPOCH = date(1899, 12, 30)  # day 0 of spreadsheets' serial dates (1900 system)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_SPECIAL = re.compile("[&<>\"\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PACKAGE_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_SHEET_START = (
    f'{_XML}<worksheet xmlns="{_MAIN}"><sheetViews><sheetView workbookViewId="0">'
    '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
    '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView></sheetViews>'
    '<sheetFormatPr defaultRowHeight="15"/><cols>'
    + "".join(f'<col min="{i}" max="{i}" width="{w}" customWidth="1"/>' for i, w in enumerate(_WIDTHS, start=1))
    + "</cols><sheetData>")
_CONTENT_TYPES = (
    f'{_XML}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/styles.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/></Types>')
_ROOT_RELS = (f'{_XML}<Relationships xmlns="{_PACKAGE_REL}"><Relationship Id="rId1" '
              f'Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>')
_WORKBOOK_RELS = (
    f'{_XML}<Relationships xmlns="{_PACKAGE_REL}">'
    f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{_REL}/styles" Target="styles.xml"/></Relationships>')
# Cell styles: 0 plain, 1 amount in euros, 2 date, 3 header (bold).
_STYLES = (
    f'{_XML}<styleSheet xmlns="{_MAIN}"><numFmts count="2">'
    f'<numFmt numFmtId="164" formatCode="{EURO_FORMAT.replace(chr(34), "&quot;")}"/>'
    f'<numFmt numFmtId="165" formatCode="{DATE_FORMAT}"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="4"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>')


def _xml(text: str) -> str:
    """Text for an XML element or attribute: escaped, without the characters XML cannot hold."""
    if _SPECIAL.search(text) is None:  # most names and labels: as they are
        return text
    return escape(_NOT_XML.sub("", text), {'"': "&quot;"})


def _xlsx_row(number: int, values, header: bool = False) -> str:
    cells = []
    for column, name, value in zip(_COLUMNS, ExportRow._fields, values, strict=True):
        ref = f"{column}{number}"
        if value is None or value == "":  # an empty cell, as openpyxl leaves it
            continue
        if header:
            cells.append(f'<c r="{ref}" t="inlineStr" s="3"><is><t>{_xml(value)}</t></is></c>')
        elif isinstance(value, str):
            cells.append(f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{_xml(_text(value))}</t></is></c>')
        elif isinstance(value, date):
            cells.append(f'<c r="{ref}"{_STYLE_OF[name]}><v>{(value - _EPOCH).days}</v></c>')
        else:
            cells.append(f'<c r="{ref}"{_STYLE_OF[name]}><v>{value}</v></c>')
    return f'<row r="{number}">{"".join(cells)}</row>'
