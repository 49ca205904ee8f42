"""Pages of the commission permanente: sessions, agenda, vote, batch of grants. Staff only."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, Length

from instruction import clock
from instruction.backoffice.forms import EurosField, FrenchDateField, parse_euros
from instruction.backoffice.views import staff_only
from instruction.campaigns.models import Campaign
from instruction.commission import services
from instruction.commission.agenda import agenda_pdf, agenda_xlsx
from instruction.commission.models import OUTCOME_LABELS, CommissionSession
from instruction.dossiers.models import Dossier
from instruction.extensions import db
from instruction.storage.files import content_disposition
from instruction.web.actions import perform
from instruction.web.forms import first_error

bp = Blueprint("commission", __name__, url_prefix="/instruction/commission")

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


bp.before_request(staff_only)  # the back-office's rule: anonymous to the login page, applicants 403


class SessionForm(FlaskForm):
    campaign_id = SelectField("Campagne", coerce=int)
    session_on = FrenchDateField("Date de la séance", validators=[DataRequired("Indiquez la date de la séance.")])
    place = StringField("Lieu", validators=[DataRequired("Indiquez le lieu de la séance."), Length(max=200)])


class ProposeForm(FlaskForm):
    reference = StringField("Référence du dossier", validators=[DataRequired("Indiquez la référence du dossier."),
                                                                Length(max=30)])
    amount = EurosField("Montant proposé (€)", validators=[DataRequired("Indiquez le montant proposé.")])


class ActionOnlyForm(FlaskForm):
    pass


def _voting_campaigns() -> list[Campaign]:
    return list(db.session.scalars(select(Campaign).where(Campaign.grants_need_vote.is_(True))
                                   .order_by(Campaign.deadline_at.desc())))


def _session(session_id: int) -> CommissionSession:
    session = db.session.get(CommissionSession, session_id)
    if session is None:
        abort(404)
    return session


@bp.route("/", methods=["GET", "POST"])
def sessions():
    form = SessionForm()
    campaigns = _voting_campaigns()
    form.campaign_id.choices = [(c.id, c.title) for c in campaigns]
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            campaign = db.session.get(Campaign, form.campaign_id.data)
            refusal = perform(services.create_session, campaign, session_on=form.session_on.data,
                              place=form.place.data, actor=current_user, now=clock.now())
            if refusal is None:
                flash("Séance créée.", "success")
                return redirect(url_for("commission.sessions"))
            flash(refusal.message, "danger")
            status = refusal.status
        else:
            flash(first_error(form), "danger")
            status = 400
    return render_template("commission/sessions.html", form=form, campaigns=campaigns,
                           sessions=services.sessions_of()), status


def _render_session(session: CommissionSession, status: int = 200, report=None):
    return render_template("commission/session.html", cp=session, rows=services.agenda(session),
                           propose_form=ProposeForm(formdata=None), action_form=ActionOnlyForm(),
                           outcome_labels=OUTCOME_LABELS, report=report), status


@bp.route("/<int:session_id>")
def session(session_id: int):
    return _render_session(_session(session_id))


@bp.route("/<int:session_id>/proposer", methods=["POST"])
def propose(session_id: int):
    cp = _session(session_id)
    form = ProposeForm()
    if not form.validate_on_submit():
        flash(first_error(form), "danger")
        return _render_session(cp, 400)
    dossier = db.session.scalar(select(Dossier).where(Dossier.reference == form.reference.data.strip().upper()))
    if dossier is None or dossier.state == "draft":
        flash(f"Aucun dossier déposé ne porte la référence « {form.reference.data.strip()[:30]} ».", "danger")
        return _render_session(cp, 400)
    refusal = perform(services.propose, cp, dossier, form.amount.data, actor=current_user, now=clock.now())
    if refusal is not None:
        flash(refusal.message, "danger")
        return _render_session(cp, refusal.status)
    flash(f"Dossier {dossier.reference} inscrit à l'ordre du jour.", "success")
    return redirect(url_for("commission.session", session_id=cp.id))


@bp.route("/<int:session_id>/deliberation", methods=["POST"])
def record_vote(session_id: int):
    cp = _session(session_id)
    if not ActionOnlyForm().validate_on_submit():
        abort(400)
    outcomes = {}
    for line in cp.lines:
        outcome = request.form.get(f"vote-{line.id}", "")
        amount = None
        if outcome == "amended":
            try:
                amount = parse_euros(request.form.get(f"montant-{line.id}", ""))
            except ValueError:
                flash(f"Montant voté invalide pour le dossier {line.dossier.reference} : indiquez des "
                      "euros et des centimes (ex. 1 234,50).", "danger")
                return _render_session(cp, 400)
        outcomes[line.id] = (outcome, amount)
    refusal = perform(services.record_vote, cp, number=request.form.get("numero", ""), outcomes=outcomes,
                      actor=current_user, now=clock.now())
    if refusal is not None:
        flash(refusal.message, "danger")
        return _render_session(cp, refusal.status)
    flash("Délibération enregistrée.", "success")
    return redirect(url_for("commission.session", session_id=cp.id))


@bp.route("/<int:session_id>/attribuer", methods=["POST"])
def grant_adopted(session_id: int):
    cp = _session(session_id)
    if not ActionOnlyForm().validate_on_submit():
        abort(400)
    outcome: dict = {}

    def run(**kwargs):
        outcome["report"] = services.grant_adopted(cp, **kwargs)

    refusal = perform(run, actor=current_user, now=clock.now())
    if refusal is not None:
        flash(refusal.message, "danger")
        return _render_session(cp, refusal.status)
    report = outcome["report"]
    flash(f"{len(report.granted)} subvention(s) attribuée(s) ; {len(report.reported)} dossier(s) "
          "signalé(s) sans attribution.", "success" if not report.reported else "warning")
    return redirect(url_for("commission.session", session_id=cp.id))


@bp.route("/<int:session_id>/ordre-du-jour.pdf")
def agenda_as_pdf(session_id: int):
    cp = _session(session_id)
    response = Response(agenda_pdf(cp), mimetype="application/pdf")
    response.headers["Content-Disposition"] = content_disposition(
        "attachment", f"ordre-du-jour-{cp.session_on.isoformat()}.pdf")
    return response


@bp.route("/<int:session_id>/ordre-du-jour.xlsx")
def agenda_as_xlsx(session_id: int):
    cp = _session(session_id)
    response = Response(agenda_xlsx(cp), mimetype=XLSX)
    response.headers["Content-Disposition"] = content_disposition(
        "attachment", f"ordre-du-jour-{cp.session_on.isoformat()}.xlsx")
    return response
