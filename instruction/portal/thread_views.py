"""The applicant's side of a dossier's thread (blueprint ``portal_thread``): a message, with its
files, to the Region's staff, from the dossier's page of the portal."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, url_for
from flask_login import current_user, login_required

from instruction import clock
from instruction.dossiers.access import visible_dossier
from instruction.dossiers.models import Dossier
from instruction.errors import Refusal
from instruction.portal.views import received_files, render_dossier
from instruction.teamwork import services
from instruction.teamwork.forms import MessageForm
from instruction.web.access import found_or_404
from instruction.web.actions import perform
from instruction.web.forms import first_error

bp = Blueprint("portal_thread", __name__, url_prefix="/portail")


def _post_message(dossier: Dossier, form: MessageForm) -> Refusal | None:
    """Post the message with its files (the unit of work removes the files of a rollback)."""
    return perform(services.post_message, dossier, current_user._get_current_object(), form.body.data or "",
                   received_files(form.files.name), max_bytes=current_app.config["MAX_UPLOAD_BYTES"],
                   now=clock.now())


@bp.route("/dossiers/<int:dossier_id>/messages", methods=["POST"])
@login_required
def post_applicant_message(dossier_id: int):
    dossier = found_or_404(visible_dossier(current_user, dossier_id))
    if current_user.role != "applicant":
        abort(403)
    form = MessageForm()
    if not form.validate():
        return render_dossier(dossier, 400, error=first_error(form), message_form=form)
    if error := _post_message(dossier, form):
        return render_dossier(dossier, error.status, error=error.message, message_form=form)
    flash("Message envoyé à la Région.", "success")
    return redirect(url_for("portal.dossier", dossier_id=dossier.id, _anchor="messages"))
