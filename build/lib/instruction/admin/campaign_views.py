"""Administration pages of the campaigns (routes of the ``admin`` blueprint, admins only)."""

from __future__ import annotations

from datetime import timedelta

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import select

from instruction import clock
from instruction.admin import campaigns as operations
from instruction.admin.forms import CampaignDatesForm, CampaignForm, ExtensionForm
from instruction.admin.views import _answer, bp
from instruction.campaigns.models import Campaign
from instruction.extensions import db
from instruction.rules.parameters import paris_date
from instruction.web.actions import perform


def _campaign(campaign_id: int) -> Campaign:
    found = db.session.get(Campaign, campaign_id)
    if found is None:
        abort(404)
    return found


@bp.route("/campagnes")
def campaigns():
    rows = db.session.scalars(select(Campaign).order_by(Campaign.deadline_at.desc())).all()
    return render_template("admin/campaigns.html", campaigns=rows, now=clock.now(), last_day=operations.last_day)


def _campaign_page(campaign: Campaign, *, new_form=None, extension_form=None, status: int = 200):
    now = clock.now()
    if new_form is None:
        new_form = CampaignForm(formdata=None, title=f"{campaign.title} (copie)",
                                reference_prefix=campaign.reference_prefix,
                                opens_on=paris_date(now) + timedelta(days=1),
                                last_day=operations.last_day(campaign.deadline_at) + timedelta(days=365))
    reference, aids = operations.parameters_view(campaign, paris_date(now))
    return render_template("admin/campaign.html", campaign=campaign, now=now, last_day=operations.last_day,
                           new_form=new_form, dates_form=CampaignDatesForm(formdata=None),
                           extension_form=extension_form or ExtensionForm(formdata=None),
                           extended=operations.extended_dossiers(campaign), reference=reference, aids=aids,
                           source_title=_source_title(campaign)), status


def _source_title(campaign: Campaign) -> str:
    source = db.session.scalar(select(Campaign).where(Campaign.code == campaign.parameters_code))
    return source.title if source is not None else campaign.title


@bp.route("/campagnes/<int:campaign_id>")
def campaign(campaign_id: int):
    return _campaign_page(_campaign(campaign_id))


@bp.route("/campagnes/<int:campaign_id>/copier", methods=["POST"])
def copy_campaign(campaign_id: int):
    source = _campaign(campaign_id)
    form = CampaignForm()
    if not form.validate_on_submit():
        return _campaign_page(source, new_form=form, status=400)
    created: list[Campaign] = []
    error = perform(lambda: created.append(operations.create_from(
        current_user, source, code=form.code.data, title=form.title.data,
        reference_prefix=form.reference_prefix.data, opens_on=form.opens_on.data, last=form.last_day.data,
        now=clock.now())))
    if error is not None:
        form.code.errors = [str(error)]
        return _campaign_page(source, new_form=form, status=error.status)
    flash(f"La campagne « {form.title.data} » est créée.", "success")
    return redirect(url_for("admin.campaign", campaign_id=created[0].id))


def _dates(campaign_id: int, operation, success: str):
    campaign = _campaign(campaign_id)
    form = CampaignDatesForm()
    if not form.validate_on_submit():
        abort(400, " ".join(form.message.errors) or "Le formulaire n'est pas valide : rechargez la page.")
    error = perform(operation, current_user, campaign, message=form.message.data or "", now=clock.now())
    return _answer(error, url_for("admin.campaign", campaign_id=campaign.id), success)


@bp.route("/campagnes/<int:campaign_id>/ouvrir", methods=["POST"])
def open_campaign(campaign_id: int):
    return _dates(campaign_id, operations.open_early, "La campagne est ouverte ; les demandeurs qui ont un "
                                                      "brouillon en sont informés.")


@bp.route("/campagnes/<int:campaign_id>/clore", methods=["POST"])
def close_campaign(campaign_id: int):
    return _dates(campaign_id, operations.close_early, "La campagne est close ; les demandeurs qui ont un "
                                                       "brouillon en sont informés.")


@bp.route("/campagnes/<int:campaign_id>/prolonger", methods=["POST"])
def extend_deadline(campaign_id: int):
    campaign = _campaign(campaign_id)
    form = ExtensionForm()
    if not form.validate_on_submit():
        return _campaign_page(campaign, extension_form=form, status=400)
    error = perform(operations.extend_deadline, current_user, campaign, reference=form.reference.data,
                    last=form.last_day.data, reason=form.reason.data, now=clock.now())
    if error is not None:
        form.reference.errors = [str(error)]
        return _campaign_page(campaign, extension_form=form, status=error.status)
    flash(f"Le dossier {form.reference.data.upper()} peut être déposé jusqu'au "
          f"{operations.format_date_fr(form.last_day.data)} inclus ; le demandeur en est informé.", "success")
    return redirect(url_for("admin.campaign", campaign_id=campaign.id))
