"""The statement of commitments of an EPCI (état des engagements) as an XLSX workbook.

Two sheets, each with its header frozen and filtered and typed cells (amounts as numbers in a euro
format, dates as dates): the envelopes (per aid, and per commune for a commune-scoped aid: cap,
committed, paid, pending demand, remaining) and every dossier that counts for them. The figures are
those of the envelopes page (``envelope_figures.for_epci``); text cells go through the exports'
formula guard. Written by openpyxl in write-only mode into a temporary file.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from instruction.backoffice.envelope_figures import AidEnvelopes, CountingDossier
from instruction.backoffice.exports import DATE_FORMAT, EURO_FORMAT, spreadsheet_text
from instruction.dossiers.models import STATE_LABELS
from instruction.rules.parameters import paris_date
from instruction.territory.models import KIND_LABELS

MONEY, DATE, TEXT, NUMBER = "money", "date", "text", "number"

ENVELOPE_COLUMNS = (
    ("Aide", NUMBER, 8), ("Intitulé de l'aide", TEXT, 40), ("Enveloppe", TEXT, 36),
    ("Plafond", MONEY, 14), ("Engagé", MONEY, 14), ("Versé", MONEY, 14),
    ("Demandes en attente", MONEY, 16), ("Nombre de demandes en attente", NUMBER, 12),
    ("Disponible", MONEY, 14), ("Disponible après les demandes", MONEY, 16),
    ("Dossiers comptant", NUMBER, 12),
)
DOSSIER_COLUMNS = (
    ("Aide", NUMBER, 8), ("Enveloppe", TEXT, 36), ("Référence", TEXT, 18), ("Demandeur", TEXT, 36),
    ("Type de demandeur", TEXT, 12), ("État", TEXT, 18), ("Déposé le", DATE, 12),
    ("Montant demandé", MONEY, 16), ("Montant calculé", MONEY, 16), ("Attribué", MONEY, 14),
    ("Versé", MONEY, 14),
)


def _sheet(workbook: Workbook, title: str, columns: Sequence[tuple[str, str, int]]) -> WriteOnlyWorksheet:
    sheet = workbook.create_sheet(title)
    for index, (_, _, width) in enumerate(columns, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "A2"
    sheet.append([header for header, _, _ in columns])
    return sheet


def _append(sheet: WriteOnlyWorksheet, columns: Sequence[tuple[str, str, int]], values: Sequence[Any]) -> None:
    cells = []
    for (_, kind, _), value in zip(columns, values, strict=True):
        if isinstance(value, str):
            value = spreadsheet_text(value)
        cell = WriteOnlyCell(sheet, value=value)
        if kind == MONEY:
            cell.number_format = EURO_FORMAT
        elif kind == DATE:
            cell.number_format = DATE_FORMAT
        cells.append(cell)
    sheet.append(cells)


def _filtered(sheet: WriteOnlyWorksheet, columns: Sequence, rows: int) -> None:
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{rows + 1}"


def write_statement(aids: Sequence[AidEnvelopes], dossiers: Iterable[CountingDossier]) -> IO[bytes]:
    """The workbook, returned as a temporary file at its start (gone once closed)."""
    workbook = Workbook(write_only=True)
    envelopes = _sheet(workbook, "Enveloppes", ENVELOPE_COLUMNS)
    labels: dict[tuple[int, str], str] = {}
    count = 0
    for aid in aids:
        for envelope in aid.envelopes:
            f = envelope.figures
            labels[(aid.aid, envelope.scope)] = envelope.label
            _append(envelopes, ENVELOPE_COLUMNS, (
                aid.aid, aid.title, envelope.label, f.limit, f.consumed, f.paid, f.pending,
                f.pending_count, f.remaining, f.remaining_after_pending, envelope.dossier_count))
            count += 1
    _filtered(envelopes, ENVELOPE_COLUMNS, count)

    listed = _sheet(workbook, "Dossiers", DOSSIER_COLUMNS)
    count = 0
    for d in dossiers:
        _append(listed, DOSSIER_COLUMNS, (
            d.aid, labels.get((d.aid, d.scope), d.scope), d.reference or "", d.applicant,
            KIND_LABELS[d.kind], STATE_LABELS[d.state],
            paris_date(d.submitted_at) if d.submitted_at else None,
            d.requested, d.computed, d.granted, d.paid))
        count += 1
    _filtered(listed, DOSSIER_COLUMNS, count)

    output = tempfile.TemporaryFile()
    workbook.save(output)
    output.seek(0)
    return output
