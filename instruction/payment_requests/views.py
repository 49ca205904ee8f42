"""Payment request pages: the beneficiary's (``/portail/dossiers/<id>/versement``) and finance's
(``/instruction/dossiers/<id>/demandes-versement/<request id>``). Views validate and call the
services through ``web.actions``; they never commit."""

from __future__ import annotations

from decimal import Decimal

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from instruction import clock
from instruction.documents import services as documents
from instruction.dossiers.access import visible_dossier
from instruction.dossiers.models import Dossier
from instruction.dossiers.services import AlreadyDone, ConfirmationRequired
from instruction.extensions import db
from instruction.payment_requests import services
from instruction.payment_requests.forms import (
    ExpenseForm,
    PayForm,
    ReturnForm,
    SendForm,
    SettleForm,
    StartForm,
)
from instruction.payment_requests.models import PaymentRequest
from instruction.portal.services import line_options
from instruction.rules.formatting import format_euros
from instruction.rules.parameters import paris_date
from instruction.storage.files import remove_files
from instruction.web.access import found_or_404, staff_only
from instruction.web.actions import attempt, perform
from instruction.web.forms import first_error

portal = Blueprint("payment_requests", __name__, url_prefix="/portail")
finance = Blueprint("payment_requests_finance", __name__, url_prefix="/instruction")
FINANCE_ROLES = ("finance", "admin")


@portal.app_context_processor
def payment_request_helpers():
    """For the dossier pages: the dossier's requests and the one open (the returned banner)."""
    return {"payment_requests_of": services.requests_of, "balance_due": services.balance_due}


def _request_of(dossier: Dossier, request_id: int) -> PaymentRequest:
    found = db.session.get(PaymentRequest, request_id) if 0 < request_id < 2**31 else None
    if found is None or found.dossier_id != dossier.id:
        abort(404)
    return found


# --- the beneficiary ---------------------------------------------------------------------------


def _applicant_dossier(dossier_id: int) -> Dossier:
    dossier = found_or_404(visible_dossier(current_user, dossier_id))
    if current_user.role != "applicant":
        abort(403)
    return dossier


def _page_url(dossier: Dossier) -> str:
    return url_for("payment_requests.page", dossier_id=dossier.id)


def _render_portal(dossier: Dossier, status: int = 200, *, error: str | None = None,
                   start_form: StartForm | None = None, expense_form: ExpenseForm | None = None,
                   send_form: SendForm | None = None):
    now = clock.now()
    current = services.open_request(dossier)
    options = line_options(dossier, now)
    return render_template(
        "payment_requests/portal.html", dossier=dossier, current=current, error=error,
        requests=services.requests_of(dossier), due=services.balance_due(dossier),
        assessment=services.assess(current) if current is not None and current.expenses else None,
        start_form=start_form or StartForm(formdata=None),
        expense_form=expense_form or ExpenseForm(formdata=None, options=options),
        send_form=send_form or SendForm(formdata=None), options=options,
        max_upload=documents.megabytes(current_app.config["MAX_UPLOAD_BYTES"]),
    ), status


@portal.route("/dossiers/<int:dossier_id>/versement")
@login_required
def page(dossier_id: int):
    return _render_portal(_applicant_dossier(dossier_id))


@portal.route("/dossiers/<int:dossier_id>/versement", methods=["POST"])
@login_required
def start(dossier_id: int):
    dossier = _applicant_dossier(dossier_id)
    form = StartForm()
    if not form.validate_on_submit():
        return _render_portal(dossier, 400, start_form=form)
    if error := perform(services.start, dossier, current_user, form.kind.data, now=clock.now()):
        return _render_portal(dossier, error.status, error=error.message)
    flash("Demande commencée : déclarez les dépenses réalisées, chacune avec sa facture acquittée.", "success")
    return redirect(_page_url(dossier))


@portal.route("/dossiers/<int:dossier_id>/versement/<int:request_id>/depenses", methods=["POST"])
@login_required
def add_expense(dossier_id: int, request_id: int):
    dossier = _applicant_dossier(dossier_id)
    payment_request = _request_of(dossier, request_id)
    now = clock.now()
    form = ExpenseForm(options=line_options(dossier, now))
    if not form.validate_on_submit():
        return _render_portal(dossier, 400, expense_form=form)
    limit = current_app.config["MAX_UPLOAD_BYTES"]
    upload = request.files.get(form.invoice.name)
    invoice = (upload.filename, documents.read_upload(upload, limit)) if upload and upload.filename else (None, b"")
    error = perform(services.add_expense, payment_request, current_user, category=form.category.data,
                    label=form.label.data, amount_ht=form.amount_ht.data,
                    pack=form.pack.data if form.pack is not None else None,
                    months=form.months.data if form.months is not None else None,
                    invoice=invoice, max_bytes=limit, now=now)
    if error:
        return _render_portal(dossier, error.status, error=error.message, expense_form=form)
    flash("Dépense réalisée ajoutée, avec sa facture acquittée.", "success")
    return redirect(_page_url(dossier))


@portal.route("/dossiers/<int:dossier_id>/versement/<int:request_id>/depenses/<int:expense_id>/supprimer",
              methods=["POST"])
@login_required
def remove_expense(dossier_id: int, request_id: int, expense_id: int):
    dossier = _applicant_dossier(dossier_id)
    payment_request = _request_of(dossier, request_id)
    if not SendForm().validate_on_submit():  # CSRF only
        abort(400)
    outcome = attempt(services.remove_expense, payment_request, expense_id, current_user, now=clock.now())
    if outcome.error:
        return _render_portal(dossier, outcome.error.status, error=outcome.error.message)
    remove_files(outcome.value or [])
    flash("Dépense retirée de la demande.", "success")
    return redirect(_page_url(dossier))


@portal.route("/dossiers/<int:dossier_id>/versement/<int:request_id>/envoyer", methods=["POST"])
@login_required
def send(dossier_id: int, request_id: int):
    dossier = _applicant_dossier(dossier_id)
    payment_request = _request_of(dossier, request_id)
    form = SendForm()
    if not form.validate_on_submit():
        return _render_portal(dossier, 400, send_form=form)
    if payment_request.status == "sent":
        flash("Cette demande de versement a déjà été envoyée.", "info")  # a double click
        return redirect(_page_url(dossier))
    if error := perform(services.send, payment_request, current_user, attested=bool(form.attest.data),
                        now=clock.now()):
        return _render_portal(dossier, error.status, error=error.message, send_form=form)
    flash(f"Demande de versement envoyée : {format_euros(payment_request.payable_amount or Decimal(0))} à verser selon les "
          f"règles de l'aide. La Région vous prévient dès qu'elle l'a traitée.", "success")
    return redirect(url_for("portal.dossier", dossier_id=dossier.id))


# --- finance -----------------------------------------------------------------------------------


finance.before_request(staff_only(403))


def _staff_dossier(dossier_id: int) -> Dossier:
    dossier = found_or_404(visible_dossier(current_user, dossier_id))
    return dossier


def _render_finance(dossier: Dossier, payment_request: PaymentRequest, status: int = 200, *,
                    error: str | None = None, pay_form: PayForm | None = None,
                    return_form: ReturnForm | None = None, confirmation: ConfirmationRequired | None = None,
                    settle_form: SettleForm | None = None):
    now = clock.now()
    assessment = services.assess(payment_request)
    if pay_form is None:
        pay_form = PayForm(formdata=None, data={"amount": assessment.amount, "paid_on": paris_date(now)})
    if settle_form is None:
        settle_form = SettleForm(formdata=None)
    if confirmation is not None:
        for form in (pay_form, settle_form):
            form.confirmed_release.data = confirmation.release
            form.confirmed_release.raw_data = None  # shown as confirmed, not as it was posted
    return render_template(
        "payment_requests/finance.html", dossier=dossier, payment_request=payment_request, now=now,
        assessment=assessment, error=error, pay_form=pay_form, settle_form=settle_form,
        # A balance that justifies nothing more is settled at 0,00 € instead of paid.
        settles_at_zero=payment_request.kind == "solde" and assessment.amount == 0,
        return_form=return_form or ReturnForm(formdata=None), confirmation=confirmation,
        can_decide=current_user.role in FINANCE_ROLES and payment_request.status == "sent"
        and dossier.state == "granted",
        due=services.balance_due(dossier),
    ), status


@finance.route("/dossiers/<int:dossier_id>/demandes-versement/<int:request_id>")
def request_page(dossier_id: int, request_id: int):
    dossier = _staff_dossier(dossier_id)
    return _render_finance(dossier, _request_of(dossier, request_id))


@finance.route("/dossiers/<int:dossier_id>/demandes-versement/<int:request_id>/verser", methods=["POST"])
def pay(dossier_id: int, request_id: int):
    dossier = _staff_dossier(dossier_id)
    payment_request = _request_of(dossier, request_id)
    if current_user.role not in FINANCE_ROLES:
        return _render_finance(dossier, payment_request, 403,
                               error="Votre rôle ne permet pas cette action sur le dossier.")
    form = PayForm()
    if not form.validate():
        return _render_finance(dossier, payment_request, 400, error=first_error(form), pay_form=form)
    error = perform(services.pay, payment_request, current_user._get_current_object(),
                    amount=form.amount.data, paid_on=form.paid_on.data, reference=form.reference.data,
                    reason=form.reason.data, now=clock.now(), token=form.token.data,
                    confirmed_release=form.confirmed_release.data)
    if isinstance(error, ConfirmationRequired):
        return _render_finance(dossier, payment_request, pay_form=form, confirmation=error)
    if isinstance(error, AlreadyDone):
        flash(error.message, "info")
    elif error is not None:
        return _render_finance(dossier, payment_request, error.status, error=error.message, pay_form=form)
    else:
        db.session.refresh(dossier)
        message = f"Versement de {format_euros(form.amount.data)} enregistré pour la demande."
        if dossier.state == "paid":
            message += f" Le dossier est soldé : {format_euros(dossier.paid_amount or Decimal(0))} versés au total."
        flash(message, "success")
    return redirect(url_for("backoffice.dossier", dossier_id=dossier.id))


@finance.route("/dossiers/<int:dossier_id>/demandes-versement/<int:request_id>/solder", methods=["POST"])
def settle(dossier_id: int, request_id: int):
    """« Solder à 0,00 € »: a sent balance whose payable amount is 0, closed without payment."""
    dossier = _staff_dossier(dossier_id)
    payment_request = _request_of(dossier, request_id)
    if current_user.role not in FINANCE_ROLES:
        return _render_finance(dossier, payment_request, 403,
                               error="Votre rôle ne permet pas cette action sur le dossier.")
    form = SettleForm()
    if not form.validate():
        return _render_finance(dossier, payment_request, 400, error=first_error(form), settle_form=form)
    error = perform(services.settle_at_zero, payment_request, current_user._get_current_object(),
                    now=clock.now(), token=form.token.data, confirmed_release=form.confirmed_release.data)
    if isinstance(error, ConfirmationRequired):
        return _render_finance(dossier, payment_request, settle_form=form, confirmation=error)
    if isinstance(error, AlreadyDone):
        flash(error.message, "info")
    elif error is not None:
        return _render_finance(dossier, payment_request, error.status, error=error.message, settle_form=form)
    else:
        db.session.refresh(dossier)
        granted = dossier.granted_amount or Decimal(0)
        paid = dossier.paid_amount or Decimal(0)
        flash(f"Solde arrêté à 0,00 €, sans versement : le dossier est soldé à {format_euros(paid)} versés ; "
              f"{format_euros(granted - paid)} rendus à l'enveloppe.", "success")
    return redirect(url_for("backoffice.dossier", dossier_id=dossier.id))


@finance.route("/dossiers/<int:dossier_id>/demandes-versement/<int:request_id>/renvoyer", methods=["POST"])
def send_back(dossier_id: int, request_id: int):
    dossier = _staff_dossier(dossier_id)
    payment_request = _request_of(dossier, request_id)
    if current_user.role not in FINANCE_ROLES:
        return _render_finance(dossier, payment_request, 403,
                               error="Votre rôle ne permet pas cette action sur le dossier.")
    form = ReturnForm()
    if not form.validate():
        return _render_finance(dossier, payment_request, 400, error=form.message.errors[0], return_form=form)
    if error := perform(services.return_to_applicant, payment_request, current_user._get_current_object(),
                        form.message.data, now=clock.now()):
        return _render_finance(dossier, payment_request, error.status, error=error.message, return_form=form)
    flash("La demande de versement est renvoyée au demandeur avec votre message.", "success")
    return redirect(url_for("backoffice.dossier", dossier_id=dossier.id))
