"""The back-office routes of the team features: the thread, notes, labels, assignment and
following on a dossier's page, bulk actions from the queue, and e-mail preferences (blueprint
``teamwork``: the endpoints and URLs of before the move into the back-office).

Views validate and call ``teamwork.services`` through ``web.actions.perform`` (the unit of work:
commit, or roll back and remove the files stored for the rolled-back rows); a refusal re-renders
the dossier's page with its French message and its 4xx status.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from instruction import clock
from instruction.accounts.models import User
from instruction.backoffice.forms import ActionForm
from instruction.backoffice.views import FORBIDDEN, load_dossier, render_dossier, safe_return
from instruction.documents import services as documents
from instruction.dossiers.models import Dossier
from instruction.dossiers.workflow import ASSIGNABLE_ROLES
from instruction.errors import Refusal
from instruction.extensions import db
from instruction.teamwork import services
from instruction.teamwork.forms import (
    AssignForm,
    LabelPickForm,
    MessageForm,
    NoteForm,
    PreferenceForm,
)
from instruction.teamwork.models import MESSAGE_EMAIL_CHOICES, Label
from instruction.web.access import staff_only
from instruction.web.actions import perform
from instruction.web.forms import first_error

bp = Blueprint("teamwork", __name__, url_prefix="/instruction")

MAX_BULK = 200


bp.before_request(staff_only(403))


def _actor() -> User:
    return current_user._get_current_object()


def _received_files(field_name: str) -> list[tuple[str | None, bytes]]:
    limit = current_app.config["MAX_UPLOAD_BYTES"]
    return [(f.filename, documents.read_upload(f, limit))
            for f in request.files.getlist(field_name) if f is not None and f.filename]


def _post_message(dossier: Dossier, form: MessageForm) -> Refusal | None:
    """Post the message with its files (the unit of work removes the files of a rollback)."""
    return perform(services.post_message, dossier, _actor(), form.body.data or "",
                   _received_files(form.files.name), max_bytes=current_app.config["MAX_UPLOAD_BYTES"],
                   now=clock.now())


def _back_to_dossier(dossier_id: int, anchor: str | None = None):
    return redirect(url_for("backoffice.dossier", dossier_id=dossier_id, _anchor=anchor))


# --- the back-office thread, notes, labels, assignment, following -------------------------------


@bp.route("/dossiers/<int:dossier_id>/messages", methods=["POST"])
def post_staff_message(dossier_id: int):
    dossier = load_dossier(dossier_id)
    form = MessageForm()
    if not form.validate():
        return render_dossier(dossier_id, error=first_error(form), status=400,
                              team_forms={"message_form": form})
    if error := _post_message(dossier, form):
        return render_dossier(dossier_id, error=error.message, status=error.status,
                              team_forms={"message_form": form})
    flash("Message envoyé au demandeur.", "success")
    return _back_to_dossier(dossier_id, "messages")


@bp.route("/dossiers/<int:dossier_id>/notes", methods=["POST"])
def add_note(dossier_id: int):
    dossier = load_dossier(dossier_id)
    form = NoteForm()
    if not form.validate():
        return render_dossier(dossier_id, error=first_error(form), status=400,
                              team_forms={"note_form": form})
    if error := perform(services.add_note, dossier, _actor(), form.body.data, now=clock.now()):
        return render_dossier(dossier_id, error=error.message, status=error.status,
                              team_forms={"note_form": form})
    flash("Note enregistrée (visible du seul personnel de la Région).", "success")
    return _back_to_dossier(dossier_id, "notes")


def _label(label_id: int | None) -> Label | None:
    return db.session.get(Label, label_id) if label_id else None


@bp.route("/dossiers/<int:dossier_id>/etiquettes", methods=["POST"])
def add_label(dossier_id: int):
    dossier = load_dossier(dossier_id)
    if current_user.role not in ASSIGNABLE_ROLES:
        return render_dossier(dossier_id, error=FORBIDDEN, status=403)
    form = LabelPickForm()
    label = _label(form.label_id.data) if form.validate() else None
    if label is None:
        return render_dossier(dossier_id, error="Choisissez une étiquette de la liste.", status=400)
    if error := perform(services.add_label, dossier, label, _actor(), now=clock.now()):
        return render_dossier(dossier_id, error=error.message, status=error.status)
    flash(f"Étiquette « {label.name} » ajoutée.", "success")
    return _back_to_dossier(dossier_id)


@bp.route("/dossiers/<int:dossier_id>/etiquettes/<int:label_id>/retirer", methods=["POST"])
def remove_label(dossier_id: int, label_id: int):
    dossier = load_dossier(dossier_id)
    if current_user.role not in ASSIGNABLE_ROLES:
        return render_dossier(dossier_id, error=FORBIDDEN, status=403)
    label = _label(label_id)
    if label is None or not ActionForm().validate():
        abort(404 if label is None else 400)
    if error := perform(services.remove_label, dossier, label, _actor(), now=clock.now()):
        return render_dossier(dossier_id, error=error.message, status=error.status)
    flash(f"Étiquette « {label.name} » retirée.", "success")
    return _back_to_dossier(dossier_id)


def _assignee(assignee_id: int | None) -> User | None:
    user = db.session.get(User, assignee_id) if assignee_id else None
    return user if user is not None and user.role in ASSIGNABLE_ROLES and user.active else None


@bp.route("/dossiers/<int:dossier_id>/attribuer", methods=["POST"])
def assign(dossier_id: int):
    dossier = load_dossier(dossier_id)
    if current_user.role not in ASSIGNABLE_ROLES:
        return render_dossier(dossier_id, error=FORBIDDEN, status=403)
    form = AssignForm()
    assignee = _assignee(form.assignee_id.data) if form.validate() else None
    if assignee is None:
        return render_dossier(dossier_id, error="Choisissez un instructeur de la liste.", status=400)
    if error := perform(services.assign_to, dossier, assignee, _actor(), now=clock.now()):
        return render_dossier(dossier_id, error=error.message, status=error.status)
    flash(f"Dossier attribué à {assignee.full_name}.", "success")
    return _back_to_dossier(dossier_id)


@bp.route("/dossiers/<int:dossier_id>/suivre", methods=["POST"])
def follow(dossier_id: int):
    dossier = load_dossier(dossier_id)
    if not ActionForm().validate():
        abort(400)
    if error := perform(services.follow, dossier, _actor(), now=clock.now()):
        return render_dossier(dossier_id, error=error.message, status=error.status)
    flash("Vous suivez ce dossier : vous serez prévenu de ses messages, de son complément ou de son retrait.",
          "success")
    return _back_to_dossier(dossier_id)


@bp.route("/dossiers/<int:dossier_id>/ne-plus-suivre", methods=["POST"])
def unfollow(dossier_id: int):
    dossier = load_dossier(dossier_id)
    if not ActionForm().validate():
        abort(400)
    if error := perform(services.unfollow, dossier, _actor()):
        return render_dossier(dossier_id, error=error.message, status=error.status)
    flash("Vous ne suivez plus ce dossier.", "success")
    return _back_to_dossier(dossier_id)


# --- bulk actions from the queue -----------------------------------------------------------------


@bp.route("/lot", methods=["POST"])
def bulk():
    """Assign or label the dossiers ticked in the queue. Every dossier or none: a refusal on one
    rolls the whole batch back."""
    back = safe_return(request.form.get("retour")) or url_for("backoffice.queue")
    if current_user.role not in ASSIGNABLE_ROLES:
        abort(403)
    if not ActionForm().validate():
        abort(400)
    ids = sorted({int(v) for v in request.form.getlist("dossiers") if v.isdigit() and len(v) <= 9})
    operation = request.form.get("operation", "")
    if not ids:
        return _bulk_error("Cochez au moins un dossier.")
    if len(ids) > MAX_BULK:
        return _bulk_error(f"Au plus {MAX_BULK} dossiers à la fois.")
    kind, _, value = operation.partition(":")
    target = int(value) if value.isdigit() and len(value) <= 9 else None
    if kind == "assign":
        assignee = _assignee(target)
        if assignee is None:
            return _bulk_error("Choisissez un instructeur de la liste.")
        run = lambda dossier, now: services.assign_to(dossier, assignee, _actor(), now=now)  # noqa: E731
        done = f"attribué(s) à {assignee.full_name}"
    elif kind == "label":
        label = _label(target)
        if label is None:
            return _bulk_error("Choisissez une étiquette de la liste.")
        run = lambda dossier, now: services.add_label(dossier, label, _actor(), now=now)  # noqa: E731
        done = f"étiqueté(s) « {label.name} »"
    else:
        return _bulk_error("Choisissez une action : attribuer ou étiqueter.")
    dossiers = list(db.session.scalars(select(Dossier).where(Dossier.id.in_(ids), Dossier.state != "draft")))
    if len(dossiers) != len(ids):
        return _bulk_error("Un des dossiers cochés n'existe pas ou n'est pas accessible.", 404)

    def apply_all():
        now = clock.now()
        for dossier in dossiers:
            run(dossier, now)

    if error := perform(apply_all):
        return _bulk_error(error.message, error.status)
    flash(f"{len(dossiers)} dossier(s) {done}.", "success")
    return redirect(back)


def _bulk_error(message: str, status: int = 400):
    return render_template("errors/error.html", code=status, title="Action groupée impossible",
                           message=message + " Revenez à la liste : rien n'a été modifié."), status


# --- preferences ---------------------------------------------------------------------------------


@bp.route("/preferences", methods=["GET", "POST"])
def preferences():
    form = PreferenceForm(message_emails=services.preference(_actor()))
    status = 200
    if request.method == "POST":
        if form.validate():
            if not (error := perform(services.set_preference, _actor(), form.message_emails.data)):
                flash("Préférence enregistrée.", "success")
                return redirect(url_for("teamwork.preferences"))
            form.message_emails.errors = [error.message]
            status = error.status
        else:
            status = 400
    return render_template("teamwork/preferences.html", form=form, choices=MESSAGE_EMAIL_CHOICES), status
