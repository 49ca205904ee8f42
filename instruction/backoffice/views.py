"""Instructor and finance back-office: queue, dossier page and its actions, envelopes of an EPCI.

Views parse and validate, then call a service through ``instruction.web.actions.perform``; the
queries live in ``queries`` and ``envelope_figures``. Staff only: an applicant gets 403.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    stream_with_context,
    url_for,
)
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from instruction import clock
from instruction.acts.services import documents_due_on
from instruction.backoffice import envelope_figures, envelope_statement, exports, queries
from instruction.backoffice.forms import (
    PAYMENT_ACTIONS,
    REASON_LABELS,
    ActionForm,
    CancelPaymentForm,
    GrantForm,
    PaymentForm,
    RequestDocumentsForm,
    form_class,
)
from instruction.backoffice.presenters import evaluation_summary, event_label
from instruction.campaigns.models import Campaign
from instruction.campaigns.services import current_campaign
from instruction.dossiers import services
from instruction.dossiers.access import can_see
from instruction.dossiers.models import (
    STATE_LABELS,
    AuditEvent,
    Dossier,
    DossierMessage,
    ExpenseLine,
    Payment,
)
from instruction.dossiers.workflow import (
    TRANSITIONS,
    Availability,
    available_actions,
    unavailable_reason,
)
from instruction.extensions import db, login_manager
from instruction.rules.formatting import format_euros
from instruction.rules.parameters import paris_date
from instruction.teamwork import services as teamwork
from instruction.teamwork.presenters import change_summary, staff_dossier_context
from instruction.territory.models import Collectivite, Epci, Sivos
from instruction.web.actions import perform
from instruction.web.forms import first_error

URL_PREFIX = "/instruction"
bp = Blueprint("backoffice", __name__, url_prefix=URL_PREFIX)

MAX_ID = 2**31 - 1
FORBIDDEN = "Votre rôle ne permet pas cette action sur le dossier."


@bp.before_request
def staff_only():
    """Anonymous: to the login page. Signed in but not staff (an applicant): 403, and 404 for the
    exports (an applicant is not told they exist)."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not current_user.is_staff:
        abort(404 if request.endpoint in EXPORTS else 403)
    return None


def queue_counts() -> dict[str, int]:
    """Tab counts without filters, for the staff home pages (one query, run only when called)."""
    if not (current_user.is_authenticated and current_user.is_staff):
        return {}
    return queries.tab_counts(queries.QueueFilters(
        tab=queries.default_tab(current_user.role), role=current_user.role, user_id=current_user.id))


def money_by_aid() -> tuple[Campaign | None, list[queries.AidMoney]]:
    """Finance's home: committed, paid and left to pay per aid of the current campaign."""
    campaign = current_campaign()
    return campaign, (queries.money_by_aid(campaign.id) if campaign else [])


@bp.app_context_processor
def home_helpers():
    return {"queue_counts": queue_counts, "queue_tabs": queries.tabs_for, "money_by_aid": money_by_aid}


@bp.context_processor
def backoffice_helpers():
    return {"STATE_LABELS": STATE_LABELS}


def _actor():
    return current_user._get_current_object()


def record_visit(dossier: Dossier, user, *, now) -> None:
    teamwork.mark_seen(dossier, user, now=now)
    teamwork.mark_read(dossier, user, now=now)


# --- the queue -----------------------------------------------------------------------------------


def _filters(options: queries.FilterOptions | None = None) -> queries.QueueFilters:
    return queries.parse_filters(request.args, options or queries.FilterOptions.load(),
                                 role=current_user.role, user_id=current_user.id)


@bp.route("/")
def queue():
    options = queries.FilterOptions.load()
    page = queries.queue_page(_filters(options))
    ids = [d.id for d in page.dossiers]
    changes = teamwork.changes_since_seen(current_user.id, ids)
    return render_template(
        "backoffice/queue.html", page=page, filters=page.filters, options=options,
        tabs=queries.tabs_for(current_user.role), sorts=queries.sorts_for(queries.TABS[page.filters.tab]),
        state_choices=queries.STATE_CHOICES, kind_choices=queries.KIND_CHOICES,
        can_take=current_user.role in queries.ASSIGNABLE_ROLES, unassigned=queries.UNASSIGNED,
        row_labels=teamwork.labels_of(ids), changes={i: change_summary(c) for i, c in changes.items()},
        bulk_form=ActionForm(formdata=None),
    )


EXPORTS = {"backoffice.export_csv", "backoffice.export_xlsx", "backoffice.epci_statement_xlsx"}


def _export_name(f: queries.QueueFilters, extension: str) -> str:
    return f"dossiers-{f.tab}-{paris_date(clock.now()).isoformat()}.{extension}"


def _large_export(f: queries.QueueFilters, fmt: str):
    """Above EXPORT_INLINE_MAX_ROWS rows, a page that offers to have the file built by the worker
    (a POST to ``exports.request_export``: a GET never writes); None for a smaller view."""
    count = queries.tab_counts(f)[f.tab]
    if count <= current_app.config["EXPORT_INLINE_MAX_ROWS"]:
        return None
    return render_template("exports/confirm.html", count=count, fmt=fmt, params=f.to_args(page=1),
                           tab=queries.TABS[f.tab].label)


@bp.route("/export.csv")
def export_csv():
    """The queue view as CSV, streamed: rows are read in batches while the response is sent."""
    options = queries.FilterOptions.load()
    f = _filters(options)
    if (large := _large_export(f, "csv")) is not None:
        return large
    lines = exports.csv_lines(exports.export_rows(f, options.aids))
    response = Response(stream_with_context(line.encode() for line in lines),
                        mimetype="text/csv", headers={"Cache-Control": "no-store"})
    response.headers.set("Content-Disposition", "attachment", filename=_export_name(f, "csv"))
    return response


@bp.route("/export.xlsx")
def export_xlsx():
    """The queue view as one XLSX sheet (typed cells), built in a temporary file."""
    options = queries.FilterOptions.load()
    f = _filters(options)
    if (large := _large_export(f, "xlsx")) is not None:
        return large
    label = queries.TABS[f.tab].label
    output = exports.write_xlsx(exports.export_rows(f, options.aids), title=f"Dossiers - {label}")
    response = send_file(output, mimetype=XLSX_MIMETYPE, as_attachment=True,
                         download_name=_export_name(f, "xlsx"), max_age=0)
    response.headers["Cache-Control"] = "no-store"
    return response


XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# --- the dossier page ----------------------------------------------------------------------------


# What the dossier page shows, loaded with it (no lazy load while rendering).
_PAGE_OPTIONS = (
    selectinload(Dossier.lines).selectinload(ExpenseLine.documents),
    selectinload(Dossier.documents),
    selectinload(Dossier.events).joinedload(AuditEvent.actor),
    selectinload(Dossier.payments).options(joinedload(Payment.recorded_by), joinedload(Payment.cancelled_by)),
    selectinload(Dossier.messages).joinedload(DossierMessage.author),
)


def load_dossier(dossier_id: int, *, for_page: bool = True) -> Dossier:
    """The dossier with everything its page shows (``for_page``), or only with what an action
    needs (its applicant, campaign, assignee: an action redirects, it renders nothing); 404 for a
    draft (it is the applicant's)."""
    if not 0 < dossier_id <= MAX_ID:
        abort(404)  # beyond the INTEGER column: the database would refuse the parameter
    dossier = db.session.scalar(
        select(Dossier).where(Dossier.id == dossier_id)
        .options(
            joinedload(Dossier.collectivite).joinedload(Collectivite.epci),
            joinedload(Dossier.campaign), joinedload(Dossier.assigned_to),
            *(_PAGE_OPTIONS if for_page else ()),
        )
        .execution_options(populate_existing=True))
    if dossier is None or dossier.state == "draft" or not can_see(current_user, dossier):
        abort(404)
    return dossier


def _nav_args() -> dict[str, Any]:  # str values; Any to be url_for's **values
    """The queue's parameters the dossier page was opened with (kept on every link and form)."""
    return {k: v for k, v in request.args.items() if k in _QUEUE_PARAMS}


_QUEUE_PARAMS = ("onglet", "etat", "campagne", "aide", "departement", "epci", "type", "instructeur", "depose_du",
                 "depose_au", "q", "tri", "ordre", "page", "etiquette", "modifies")


def _blank_form(action: str, dossier: Dossier, today) -> FlaskForm:
    cls = form_class(action)
    if cls is GrantForm:
        return GrantForm(formdata=None, data={"amount": dossier.computed_amount})
    if cls is PaymentForm:
        return PaymentForm(formdata=None, data={"paid_on": today})
    if cls is RequestDocumentsForm:
        return RequestDocumentsForm(formdata=None, data={"due_on": documents_due_on(dossier, clock.now())})
    return cls(formdata=None)


GRANT_NEEDS_VOTE = ("Les subventions de cette campagne sont votées par la commission permanente : "
                    "inscrivez le dossier à une séance ; la délibération adoptée l'attribue.")


def render_dossier(dossier_id: int, *, error: str | None = None, status: int = 200,
                   submitted: tuple[str, FlaskForm] | None = None,
                   confirmation: services.ConfirmationRequired | None = None, team_forms: dict | None = None):
    dossier = load_dossier(dossier_id)
    now = clock.now()
    ctx = services.context_for(_actor(), now)
    everything = available_actions(dossier, ctx)
    # One payment form does partial and final; each payment has its own cancellation form.
    actions = [a for a in everything if a.transition.action != "record_final_payment"]
    if dossier.campaign.grants_need_vote:  # only the adopted deliberation grants (commission pages)
        actions = [Availability(a.transition, GRANT_NEEDS_VOTE) if a.transition.action == "grant" and a.allowed
                   else a for a in actions]
    forms = {a.transition.action: _blank_form(a.transition.action, dossier, paris_date(now))
             for a in actions if a.allowed}
    if submitted:
        key = "record_payment" if submitted[0] in PAYMENT_ACTIONS else submitted[0]
        if key in forms:
            forms[key] = submitted[1]
    if confirmation is not None and "record_payment" in forms:
        forms["record_payment"].confirmed_release.data = confirmation.release
    cancel_forms = {}
    cancelling = TRANSITIONS["cancel_payment"]
    if cancelling.allows_role(ctx) and unavailable_reason(cancelling, dossier, ctx) is None:
        cancel_forms = {p.id: CancelPaymentForm(formdata=None) for p in dossier.payments if p.counts}
        if submitted and submitted[0] == "cancel_payment":
            cancel_forms[submitted[1].payment_id] = submitted[1]
    nav_args = _nav_args()
    position = None
    if "onglet" in nav_args:
        position = queries.neighbours(_filters(), dossier.id)
    return render_template(
        "backoffice/dossier.html", dossier=dossier, now=now, actions=actions, forms=forms,
        error=error, evaluation=evaluation_summary(dossier, now),
        envelope=envelope_figures.for_dossier(dossier, now),
        demand=envelope_figures.demand_of(dossier), nav_args=nav_args, position=position,
        event_label=event_label, reason_labels=REASON_LABELS,
        can_take=unavailable_reason(TRANSITIONS["assign"], dossier, ctx) is None
        and TRANSITIONS["assign"].allows_role(ctx),
        take_form=ActionForm(formdata=None), per_page=queries.PER_PAGE,
        confirmation=confirmation, cancel_forms=cancel_forms,
        submitted_action=submitted[0] if submitted else None, submitted_form=submitted[1] if submitted else None,
        submitted_payment_id=getattr(submitted[1], "payment_id", None) if submitted else None,
        STATE_LABELS=STATE_LABELS,  # also rendered by the teamwork blueprint's routes (teamwork_views)
        **staff_dossier_context(dossier, _actor(), team_forms),
    ), status


@bp.route("/dossiers/<int:dossier_id>")
def dossier(dossier_id: int):
    """The page shows what changed since this person's last visit, then the visit is recorded
    (and the applicant's messages are read: their read receipt)."""
    page, status = render_dossier(dossier_id)
    loaded = db.session.get(Dossier, dossier_id)
    perform(record_visit, loaded, _actor(), now=clock.now())
    return page, status


def _call(action: str, dossier: Dossier, form: FlaskForm):
    """The service of ``action`` and its arguments, from the validated form."""
    actor = _actor()
    if action == "assign":
        return services.assign, (dossier, actor), {}
    if action == "grant":
        return services.grant, (dossier, actor, form.amount.data), {"token": form.token.data}
    if action == "request_documents":
        return services.request_documents, (dossier, actor, form.reason.data), {"due_on": form.due_on.data}
    if action in PAYMENT_ACTIONS:
        return services.record_payment, (dossier, actor), {
            "amount": form.amount.data, "paid_on": form.paid_on.data, "reference": form.reference.data,
            "final": action == "record_final_payment" or bool(form.final.data),
            "token": form.token.data, "confirmed_release": form.confirmed_release.data}
    if action == "cancel_grant":
        return services.cancel_grant, (dossier, actor, form.reason.data), {"token": form.token.data}
    if TRANSITIONS[action].needs_reason:
        return getattr(services, action), (dossier, actor, form.reason.data), {}
    return getattr(services, action), (dossier, actor), {}


def _success_message(action: str, dossier: Dossier, form: FlaskForm) -> str:
    if action == "assign":
        return f"Vous prenez en charge le dossier {dossier.reference}."
    if action == "grant":
        assert dossier.granted_amount is not None  # granted just now
        return f"Subvention de {format_euros(dossier.granted_amount)} attribuée au dossier {dossier.reference}."
    if action in PAYMENT_ACTIONS:
        message = f"Versement de {format_euros(form.amount.data)} enregistré."
        if dossier.state == "paid":
            assert dossier.paid_amount is not None  # CHECK paid_has_amount
            message += f" Le dossier est soldé : {format_euros(dossier.paid_amount)} versés au total."
        return message
    messages = {
        "request_documents": "La demande de pièces a été envoyée au demandeur.",
        "declare_eligible": "Le dossier est déclaré éligible : l'évaluation des règles est figée.",
        "declare_ineligible": "Le dossier est déclaré inéligible.",
        "refuse": "Le dossier est refusé.",
        "cancel_grant": "L'attribution est annulée : son montant est rendu à l'enveloppe.",
        "cancel_payment": "Le versement est annulé : le montant versé du dossier est corrigé.",
        "reopen": "L'instruction du dossier est rouverte.",
    }
    return messages.get(action, f"{TRANSITIONS[action].label} : c'est fait.")


def safe_return(target: str | None) -> str | None:
    """Only a back-office path is followed after an action (never another site)."""
    if target and target.startswith(URL_PREFIX + "/") and "//" not in target and "\\" not in target:
        return target
    return None


@bp.route("/dossiers/<int:dossier_id>/actions/<action>", methods=["POST"])
def act(dossier_id: int, action: str):
    """One route per action. Unknown: 404; not for this role: 403 whatever was posted; invalid
    input: 400; refused by the service: its status (400/403/409) with its French message."""
    if action not in TRANSITIONS or action == "cancel_payment":
        abort(404)  # a payment is cancelled from its own route
    dossier = load_dossier(dossier_id, for_page=False)
    now = clock.now()
    if not TRANSITIONS[action].allows_role(services.context_for(_actor(), now)):
        return render_dossier(dossier_id, error=FORBIDDEN, status=403)
    form = form_class(action)()
    if not form.validate():
        return render_dossier(dossier_id, error=first_error(form), status=400, submitted=(action, form))
    operation, args, kwargs = _call(action, dossier, form)
    return _done(perform(operation, *args, now=now, **kwargs), action, dossier, form)


def _done(error, action: str, dossier: Dossier, form: FlaskForm):
    """After a service: back to the dossier with a message, or the page again with the refusal (or
    the confirmation a final payment below the grant asks for)."""
    if isinstance(error, services.ConfirmationRequired):
        return render_dossier(dossier.id, submitted=(action, form), confirmation=error)
    if isinstance(error, services.AlreadyDone):
        flash(error.message, "info")
    elif error is not None:
        return render_dossier(dossier.id, error=error.message, status=error.status, submitted=(action, form))
    else:
        flash(_success_message(action, dossier, form), "success")
    return redirect(safe_return(request.form.get("retour"))
                    or url_for("backoffice.dossier", dossier_id=dossier.id, **_nav_args()))


@bp.route("/dossiers/<int:dossier_id>/versements/<int:payment_id>/annulation", methods=["POST"])
def cancel_payment(dossier_id: int, payment_id: int):
    """Cancel a payment recorded by mistake (finance or admin, with a reason)."""
    dossier = load_dossier(dossier_id)
    payment = next((p for p in dossier.payments if p.id == payment_id), None)
    if payment is None:
        abort(404)
    if not TRANSITIONS["cancel_payment"].allows_role(services.context_for(_actor(), clock.now())):
        return render_dossier(dossier_id, error=FORBIDDEN, status=403)
    form = CancelPaymentForm()
    form.payment_id = payment_id
    if not form.validate():
        return render_dossier(dossier_id, error=first_error(form), status=400, submitted=("cancel_payment", form))
    error = perform(services.cancel_payment, dossier, payment.id, _actor(), form.reason.data,
                    now=clock.now(), token=form.token.data)
    return _done(error, "cancel_payment", dossier, form)


# --- envelopes of an EPCI ------------------------------------------------------------------------


def _epci_and_campaign(siren: str) -> tuple[Epci, Campaign | None, list[Campaign], str | None]:
    """The EPCI (404 if unknown), the campaign asked (``campagne``, else the current one), every
    campaign, and the warning for an unknown campaign code."""
    epci = db.session.scalar(select(Epci).where(Epci.siren == siren)
                             .options(joinedload(Epci.ville_centre), joinedload(Epci.departement)))
    if epci is None:
        abort(404)
    campaigns = db.session.scalars(select(Campaign).order_by(Campaign.deadline_at.desc())).all()
    warning = None
    code = (request.args.get("campagne") or "").strip()
    campaign = next((c for c in campaigns if c.code == code), None)
    if code and campaign is None:
        warning = f"Campagne « {code[:40]} » inconnue : campagne en cours affichée."
    return epci, campaign or current_campaign(), list(campaigns), warning


@bp.route("/epci/<siren>")
def epci_envelopes(siren: str):
    epci, campaign, campaigns, warning = _epci_and_campaign(siren)
    now = clock.now()
    aids = envelope_figures.for_epci(epci, campaign, now) if campaign else []
    sivos = db.session.scalars(select(Sivos).where(Sivos.epci_id == epci.id).order_by(Sivos.name)).all()
    return render_template("backoffice/epci.html", epci=epci, campaign=campaign, campaigns=campaigns,
                           aids=aids, sivos=sivos, warning=warning)


@bp.route("/epci/<siren>/etat-des-engagements.xlsx")
def epci_statement_xlsx(siren: str):
    """The statement of commitments of the EPCI (état des engagements) for the campaign asked:
    the envelopes' figures and every dossier that counts for them."""
    epci, campaign, _, _ = _epci_and_campaign(siren)
    if campaign is None:
        abort(404)
    now = clock.now()
    output = envelope_statement.write_statement(envelope_figures.for_epci(epci, campaign, now),
                                                envelope_figures.counting_dossiers(epci, campaign))
    name = f"etat-des-engagements-{epci.siren}-{campaign.code}-{paris_date(now).isoformat()}.xlsx"
    response = send_file(output, mimetype=XLSX_MIMETYPE, as_attachment=True, download_name=name, max_age=0)
    response.headers["Cache-Control"] = "no-store"
    return response
