"""The agenda of a session as a PDF (WeasyPrint) and an XLSX workbook (openpyxl)."""

from __future__ import annotations

from io import BytesIO

from flask import current_app, render_template
from openpyxl import Workbook
from openpyxl.styles import Font

from instruction.commission.models import CommissionSession
from instruction.commission.services import agenda
from instruction.rules.formatting import format_date_fr
from instruction.settings.services import current_identity

EURO_FORMAT = '#,##0.00 "€"'
HEADERS = ("Aide", "EPCI", "Dossier", "Bénéficiaire", "Montant calculé", "Montant proposé",
           "Plafond de l'enveloppe", "Enveloppe avant", "Enveloppe après", "Vote")


def agenda_pdf(session: CommissionSession) -> bytes:
    from weasyprint import HTML

    html = render_template("commission/agenda_pdf.html", session=session, rows=agenda(session),
                           identity=current_identity(), session_on=format_date_fr(session.session_on))
    return HTML(string=html, base_url=current_app.root_path).write_pdf()


def agenda_xlsx(session: CommissionSession) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Ordre du jour"
    sheet.append([f"Commission permanente du {format_date_fr(session.session_on)} — {session.place}"])
    sheet["A1"].font = Font(bold=True)
    if session.deliberation_number:
        sheet.append([f"Délibération n° {session.deliberation_number}"])
    sheet.append([])
    sheet.append(list(HEADERS))
    for cell in sheet[sheet.max_row]:
        cell.font = Font(bold=True)
    for row in agenda(session):
        sheet.append([f"Aide {row.aid_number}", row.epci, row.reference, row.beneficiary, row.computed,
                      row.proposed, row.cap, row.before, row.after, row.line.outcome_label])
        for column in "EFGHI":
            sheet[f"{column}{sheet.max_row}"].number_format = EURO_FORMAT
    for column, width in zip("ABCDEFGHIJ", (8, 40, 20, 40, 16, 16, 18, 16, 16, 24), strict=True):
        sheet.column_dimensions[column].width = width
    out = BytesIO()
    workbook.save(out)
    return out.getvalue()
