"""Downloading legal acts: the dossier's collectivité and staff (404 for anyone else)."""

from __future__ import annotations

from flask import Blueprint, Response, abort
from flask_login import current_user, login_required

from instruction import clock
from instruction.acts import services
from instruction.acts.models import LegalAct
from instruction.documents.services import content_disposition
from instruction.documents.views import DOWNLOAD_CSP
from instruction.dossiers.access import visible_dossier
from instruction.extensions import db
from instruction.web.access import found_or_404
from instruction.web.actions import perform

bp = Blueprint("acts", __name__, url_prefix="/actes")


@bp.record_once
def _template_helpers(state) -> None:
    state.app.jinja_env.globals["legal_acts_of"] = services.acts_of


@bp.route("/<int:act_id>/pdf")
@login_required
def download(act_id: int):
    act = db.session.get(LegalAct, act_id)
    if act is None:
        abort(404)
    found_or_404(visible_dossier(current_user, act.dossier_id))  # 404 if not visible
    if act.storage_key is None:  # first download: render once and keep
        refusal = perform(services.ensure_rendered, act, now=clock.now())
        if refusal is not None:
            abort(refusal.status, refusal.message)
    response = Response(services.pdf_of(act), mimetype="application/pdf")
    response.headers["Content-Disposition"] = content_disposition("attachment", act.file_name)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = DOWNLOAD_CSP
    response.headers["Cache-Control"] = "private, no-cache"
    response.headers["ETag"] = f'"{act.sha256}"'
    return response
