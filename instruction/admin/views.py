"""Region administration: home, people (invitations, roles, deactivation, accounts waiting for
approval), territory, campaigns, the audit of admin actions.

Every route of this blueprint is for the ``admin`` role only (403 for any other role). Views
validate the forms and call the operations of ``instruction.admin`` (which write the audit event)
through ``perform``; they never commit themselves. The agents of a collectivité approve their
colleagues from the portal (``accounts.views``).
"""

from __future__ import annotations

from datetime import datetime, time

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from instruction import clock
from instruction.accounts import services
from instruction.accounts.forms import ApprovalForm, RefusalForm
from instruction.accounts.models import ROLE_LABELS, ROLES, User
from instruction.accounts.views import decide, decision_answer, refusal_form_problem
from instruction.admin import audit, people
from instruction.admin.forms import ConfirmForm, InviteForm, ReasonForm, RoleForm
from instruction.audit import services as audit_chain
from instruction.extensions import db
from instruction.rules.parameters import PARIS
from instruction.web.actions import perform
from instruction.web.numbers import bounded_int, page_number

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
    return audit_chain.last_verification()


@bp.app_context_processor
def admin_helpers():
    return {"pending_accounts_count": pending_accounts_count, "last_audit_verification": last_audit_verification,
            "admin_endpoints": {e for e in current_app.view_functions if e.startswith("admin.")}}


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


def _audited(operation, action: str):
    """An approval service that also writes the admin's audit event."""
    def run(user: User, approver: User, *args, now: datetime):
        before = {"approved": user.is_approved, "active": user.active}
        operation(user, approver, *args, now=now)
        audit.record(approver, action, subject_kind="user", subject_id=user.id,
                     label=people.label_of(user), now=now, before=before,
                     after={"approved": action == "approve_account", "active": action == "approve_account"},
                     reason=args[0] if args else None)
    return run


def _back() -> str:
    return url_for("admin.accounts", page=page_number(request.form.get("page")))


@bp.route("/comptes/<int:user_id>/valider", methods=["POST"])
def approve(user_id: int):
    user = _applicant(user_id)
    if not ApprovalForm().validate_on_submit():
        abort(400)
    error = decide(_audited(services.approve_account, "approve_account"), user)
    if error is not None:
        return decision_answer(error, _back())
    flash(f"Le compte de {user.full_name} ({user.email}, {user.applicant_collectivite.name}) est validé : "
          "un message l'en informe.", "success")
    return redirect(_back())


@bp.route("/comptes/<int:user_id>/refuser", methods=["POST"])
def refuse(user_id: int):
    user = _applicant(user_id)
    form = RefusalForm()
    if not form.validate_on_submit():
        form.reason.errors = [refusal_form_problem(form)]
        return _render_accounts(400, failed=(user.id, form))
    error = decide(_audited(services.refuse_account, "refuse_account"), user, form.reason.data)
    if error is not None and error.status == 400:
        form.reason.errors = [str(error)]
        return _render_accounts(400, failed=(user.id, form))
    if error is not None:
        return decision_answer(error, _back())
    flash(f"La demande d'accès de {user.full_name} ({user.email}) est refusée et le compte désactivé : "
          "un message lui en donne le motif.", "success")
    return redirect(_back())


# --- home ----------------------------------------------------------------------------------------


@bp.route("/")
def home():
    recent = db.session.scalars(audit.admin_events_query().limit(10)).all()
    return render_template("admin/home.html", recent=recent, action_labels=audit.ACTION_LABELS)


# --- people --------------------------------------------------------------------------------------


def _answer(error, back: str, success: str):
    """After ``perform``: the success message, or the refusal's French reason with its status."""
    if error is None:
        flash(success, "success")
        return redirect(back)
    title = {400: "Demande incomplète", 403: "Accès refusé"}.get(error.status, "Action impossible")
    return render_template("errors/error.html", code=error.status, title=title, message=str(error),
                           back=back), error.status


def _person(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return user


def _people_page(invite_form: InviteForm | None = None, status: int = 200):
    role = request.args.get("role") if request.args.get("role") in ROLES else None
    state = request.args.get("statut") if request.args.get("statut") in ("actif", "desactive", "invitation") else None
    text = (request.args.get("q") or "").strip()[:100]
    page = db.paginate(people.people_query(role=role, status=state, text=text), per_page=PER_PAGE,
                       page=page_number(request.args.get("page")), error_out=False)
    return render_template("admin/people.html", page=page, invite_form=invite_form or InviteForm(formdata=None),
                           role_labels=ROLE_LABELS, filters={"role": role, "statut": state, "q": text},
                           query_filters=_present({"role": role, "statut": state, "q": text}),
                           pending=services.invitation_pending,
                           invite_days=services.INVITE_MAX_AGE // 86400), status


def _present(filters: dict) -> dict:
    return {name: value for name, value in filters.items() if value}


@bp.route("/personnes")
def people_list():
    return _people_page()


@bp.route("/personnes/inviter", methods=["POST"])
def invite():
    form = InviteForm()
    if not form.validate_on_submit():
        return _people_page(form, 400)
    error = perform(people.invite_staff, current_user, email=form.email.data, full_name=form.full_name.data,
                    role=form.role.data, now=clock.now())
    if error is not None and error.status == 400:
        form.email.errors = [*form.email.errors, str(error)]
        return _people_page(form, 400)
    return _answer(error, url_for("admin.people_list"),
                   f"Invitation envoyée à {form.email.data} : le lien pour choisir un mot de passe est "
                   f"valable {services.INVITE_MAX_AGE // 86400} jours.")


def _people_back() -> str:
    target = request.form.get("back") or ""
    return target if target.startswith("/administration/") else url_for("admin.people_list")


@bp.route("/personnes/<int:user_id>/role", methods=["POST"])
def change_role(user_id: int):
    user = _person(user_id)
    form = RoleForm()
    if not form.validate_on_submit():
        abort(400, "Choisissez un rôle parmi instructeur, finances et administrateur.")
    error = perform(people.change_role, current_user, user, form.role.data, now=clock.now())
    return _answer(error, _people_back(), f"{user.full_name} a désormais le rôle « {ROLE_LABELS[form.role.data]} ».")


@bp.route("/personnes/<int:user_id>/desactiver", methods=["POST"])
def deactivate(user_id: int):
    user = _person(user_id)
    form = ReasonForm()
    if not form.validate_on_submit():
        abort(400, " ".join(form.reason.errors) or "Le formulaire n'est pas valide : rechargez la page.")
    error = perform(people.deactivate, current_user, user, now=clock.now(), reason=form.reason.data or "")
    return _answer(error, _people_back(), f"Le compte de {user.full_name} est désactivé : il ne peut plus se "
                                          "connecter et ses sessions sont fermées. Son historique est conservé.")


@bp.route("/personnes/<int:user_id>/reactiver", methods=["POST"])
def reactivate(user_id: int):
    user = _person(user_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    error = perform(people.reactivate, current_user, user, now=clock.now())
    return _answer(error, _people_back(), f"Le compte de {user.full_name} est réactivé.")


@bp.route("/personnes/<int:user_id>/renvoyer-invitation", methods=["POST"])
def resend_invitation(user_id: int):
    user = _person(user_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    error = perform(people.resend_invitation, current_user, user, now=clock.now())
    return _answer(error, _people_back(), f"Une nouvelle invitation est envoyée à {user.email}.")


# --- audit ---------------------------------------------------------------------------------------


def _day_bound(value: str | None, *, end: bool = False) -> datetime | None:
    """The first instant of a Paris day given as YYYY-MM-DD (of the next day if ``end``)."""
    from datetime import date, timedelta

    try:
        day = date.fromisoformat(value or "")
    except ValueError:
        return None
    if end:
        day += timedelta(days=1)
    return datetime.combine(day, time(0), tzinfo=PARIS)


@bp.route("/journal")
def audit_log():
    args = request.args
    action = args.get("action") if args.get("action") in audit.ACTION_LABELS else None
    kind = args.get("objet") if args.get("objet") in audit.SUBJECT_LABELS else None
    actor_id = bounded_int(args.get("auteur"))
    text = (args.get("q") or "").strip()[:100]
    query = audit.admin_events_query(action=action, actor_id=actor_id, subject_kind=kind, text=text,
                                     since=_day_bound(args.get("du")), until=_day_bound(args.get("au"), end=True))
    page = db.paginate(query, per_page=PER_PAGE, page=page_number(args.get("page")), error_out=False)
    admins = db.session.scalars(select(User).where(User.role == "admin").order_by(User.full_name)).all()
    return render_template("admin/audit.html", page=page, admins=admins, action_labels=audit.ACTION_LABELS,
                           describe=audit.describe,
                           subject_labels=audit.SUBJECT_LABELS,
                           filters=(filters := {"action": action, "objet": kind, "auteur": actor_id, "q": text,
                                                "du": args.get("du", ""), "au": args.get("au", "")}),
                           query_filters=_present(filters))


from instruction.admin import (  # noqa: E402,F401  (routes of this blueprint)
    campaign_views,
    personal_data_views,
    settings_views,
    territory_views,
)
