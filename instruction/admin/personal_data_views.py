"""Admins: export the personal data held on one person, erase it by pseudonymisation."""

from __future__ import annotations

import json

from flask import Response, abort, flash, redirect, url_for
from flask_login import current_user

from instruction import clock
from instruction.accounts.models import User
from instruction.admin import audit, personal_data
from instruction.admin.forms import ReasonForm
from instruction.admin.views import bp
from instruction.extensions import db
from instruction.web.actions import perform


def _someone(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return user


def _export(user: User, actor: User, *, now) -> dict:
    data = personal_data.export(user, now=now)
    audit.record(actor, "export_personal_data", subject_kind="user", subject_id=user.id,
                 label=personal_data.pseudonym(user)[0], now=now)
    return data


@bp.route("/personnes/<int:user_id>/donnees-personnelles")
def export_personal_data(user_id: int):
    """A JSON file of everything held on the person; the export itself is journalled."""
    user = _someone(user_id)
    result: dict = {}
    error = perform(lambda: result.update(_export(user, current_user._get_current_object(), now=clock.now())))
    if error is not None:
        abort(error.status, error.message)
    body = json.dumps(result, ensure_ascii=False, indent=2)
    return Response(body, mimetype="application/json", headers={
        "Content-Disposition": f'attachment; filename="donnees-personnelles-{user.id}.json"',
        "Cache-Control": "no-store"})


def _erase(user: User, actor: User, reason: str, *, now) -> None:
    personal_data.erase(user, actor, now=now)
    audit.record(actor, "erase_personal_data", subject_kind="user", subject_id=user.id,
                 label=personal_data.pseudonym(user)[0], now=now, reason=reason)


@bp.route("/personnes/<int:user_id>/effacer", methods=["POST"])
def erase_personal_data(user_id: int):
    user = _someone(user_id)
    form = ReasonForm()
    if not form.validate_on_submit():
        abort(400, " ".join(form.reason.errors) or "Le formulaire n'est pas valide : rechargez la page.")
    error = perform(_erase, user, current_user._get_current_object(), form.reason.data or "", now=clock.now())
    if error is not None:
        abort(error.status, error.message)
    flash(f"Les données personnelles du compte n° {user.id} sont effacées : il s'appelle désormais "
          f"« {user.full_name} », ne peut plus se connecter, et son historique reste attribué à ce pseudonyme.",
          "success")
    return redirect(url_for("admin.people_list"))
