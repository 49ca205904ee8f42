"""Region administration: the applicant accounts waiting for approval.

Every route of this blueprint is for the ``admin`` role only (403 for any other role). Views
validate the forms and call ``accounts.services`` (``approve_account``, ``refuse_account``),
which check who may decide and queue the e-mails; the agents of a collectivité approve their
colleagues from the portal (``accounts.views``).
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from instruction.accounts import services
from instruction.accounts.forms import ApprovalForm, RefusalForm
from instruction.accounts.models import User
from instruction.accounts.views import decide, decision_answer, refusal_form_problem
from instruction.audit import services as audit
from instruction.extensions import db
from instruction.web.numbers import page_number

bp = Blueprint("admin", __name__, url_prefix="/administration")
PER_PAGE = 50


@bp.before_request
@login_required
def admins_only():
    if current_user.role != "admin":
        abort(403)


def pending_accounts_count() -> int:
    """Accounts waiting for approval, for the admin's navbar and home (0 for anyone else)."""
    if not (current_user.is_authenticated and current_user.role == "admin"):
        return 0
    return services.count_pending_accounts()


def last_audit_verification():
    """The last verification of the audit chain, for the admin home (None for anyone else)."""
    if not (current_user.is_authenticated and current_user.role == "admin"):
        return None
    return audit.last_verification()


@bp.app_context_processor
def admin_helpers():
    return {"pending_accounts_count": pending_accounts_count, "last_audit_verification": last_audit_verification}


def _render_accounts(status: int = 200, failed: tuple[int, RefusalForm] | None = None):
    page = db.paginate(services.pending_accounts_query(), page=page_number(request.args.get("page")),
                       per_page=PER_PAGE, error_out=False)
    agents = services.approved_agents_count(u.collectivite_id for u in page.items)
    return render_template("admin/accounts.html", page=page, agents=agents, failed=failed), status


@bp.route("/comptes")
def accounts():
    return _render_accounts()


def _applicant(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None or user.role != "applicant":
        abort(404)
    return user


def _back() -> str:
    return url_for("admin.accounts", page=page_number(request.form.get("page")))


@bp.route("/comptes/<int:user_id>/valider", methods=["POST"])
def approve(user_id: int):
    user = _applicant(user_id)
    if not ApprovalForm().validate_on_submit():
        abort(400)
    error = decide(services.approve_account, user)
    if error is not None:
        return decision_answer(error, _back())
    flash(f"Le compte de {user.full_name} ({user.email}, {user.collectivite.name}) est validé : "
          "un message l'en informe.", "success")
    return redirect(_back())


@bp.route("/comptes/<int:user_id>/refuser", methods=["POST"])
def refuse(user_id: int):
    user = _applicant(user_id)
    form = RefusalForm()
    if not form.validate_on_submit():
        form.reason.errors = [refusal_form_problem(form)]
        return _render_accounts(400, failed=(user.id, form))
    error = decide(services.refuse_account, user, form.reason.data)
    if error is not None and error.status == 400:
        form.reason.errors = [str(error)]
        return _render_accounts(400, failed=(user.id, form))
    if error is not None:
        return decision_answer(error, _back())
    flash(f"La demande d'accès de {user.full_name} ({user.email}) est refusée et le compte désactivé : "
          "un message lui en donne le motif.", "success")
    return redirect(_back())
