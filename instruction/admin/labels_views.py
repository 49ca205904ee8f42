"""The admins' page of the labels staff put on dossiers (blueprint ``labels``): create, rename or
recolour, delete (which takes the label off every dossier)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from instruction import clock
from instruction.accounts.models import User
from instruction.backoffice.forms import ActionForm
from instruction.extensions import db
from instruction.teamwork import services
from instruction.teamwork.forms import LabelForm
from instruction.teamwork.models import LABEL_COLOURS, Label
from instruction.web.actions import perform
from instruction.web.forms import first_error

bp = Blueprint("labels", __name__, url_prefix="/administration/etiquettes")


@bp.before_request
@login_required
def admins_only():
    if current_user.role != "admin":
        abort(403)


def _actor() -> User:
    return current_user._get_current_object()


def _render_labels(form: LabelForm | None = None, error: str | None = None, status: int = 200):
    labels = services.all_labels()
    return render_template("teamwork/labels.html", labels=labels, form=form or LabelForm(formdata=None),
                           colours=LABEL_COLOURS, error=error,
                           edit_forms={label.id: LabelForm(formdata=None, obj=label) for label in labels}), status


@bp.route("/", methods=["GET", "POST"])
def labels():
    if request.method == "GET":
        return _render_labels()
    form = LabelForm()
    if not form.validate():
        return _render_labels(form, first_error(form), 400)
    if error := perform(services.create_label, _actor(), form.name.data, form.colour.data, now=clock.now()):
        return _render_labels(form, error.message, error.status)
    flash(f"Étiquette « {form.name.data} » créée.", "success")
    return redirect(url_for("labels.labels"))


@bp.route("/<int:label_id>", methods=["POST"])
def update_label(label_id: int):
    label = db.session.get(Label, label_id) or abort(404)
    form = LabelForm()
    if not form.validate():
        return _render_labels(error=first_error(form), status=400)
    if error := perform(services.update_label, _actor(), label, form.name.data, form.colour.data):
        return _render_labels(error=error.message, status=error.status)
    flash("Étiquette modifiée.", "success")
    return redirect(url_for("labels.labels"))


@bp.route("/<int:label_id>/supprimer", methods=["POST"])
def delete_label(label_id: int):
    label = db.session.get(Label, label_id)
    if label is None:
        flash("Cette étiquette a déjà été supprimée.", "info")
        return redirect(url_for("labels.labels"))
    if not ActionForm().validate():
        abort(400)
    name = label.name
    if error := perform(services.delete_label, _actor(), label):
        return _render_labels(error=error.message, status=error.status)
    flash(f"Étiquette « {name} » supprimée (et retirée des dossiers).", "success")
    return redirect(url_for("labels.labels"))
