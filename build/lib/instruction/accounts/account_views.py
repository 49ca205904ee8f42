"""« Mon compte »: the signed-in user's security (password, sessions, two-factor authentication)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from instruction import clock
from instruction.accounts import services, two_factor
from instruction.accounts.forms import ChangePasswordForm, CodeForm, EndSessionsForm
from instruction.accounts.limiter import second_factor_limit
from instruction.accounts.views import enable_second_factor, render_enrolment
from instruction.web.actions import perform

bp = Blueprint("account", __name__, url_prefix="/compte")


@bp.before_request
@login_required
def _signed_in():
    return None


def _render(status: int = 200, password_form: ChangePasswordForm | None = None,
            code_form: CodeForm | None = None):
    return render_template(
        "auth/account.html",
        password_form=password_form or ChangePasswordForm(formdata=None, account_email=current_user.email),
        end_form=EndSessionsForm(formdata=None), code_form=code_form or CodeForm(formdata=None),
        remaining_codes=two_factor.remaining_recovery_codes(current_user)
        if current_user.totp_enabled_at else 0), status


@bp.route("/")
def index():
    return _render()


@bp.route("/mot-de-passe", methods=["POST"])
def change_password():
    user = current_user._get_current_object()
    form = ChangePasswordForm(account_email=user.email)
    if not form.validate_on_submit():
        return _render(400, form)
    if error := perform(services.change_password, user, form.current.data, form.password.data):
        form.current.errors = [*form.current.errors, error.message]
        return _render(error.status, form)
    login_user(user)  # this browser carries on, with the new session version; the others end
    flash("Votre mot de passe est changé. Vos autres sessions (autres navigateurs, appareils, "
          "« Rester connecté ») sont fermées.", "success")
    return redirect(url_for("account.index"))


@bp.route("/deconnexion-partout", methods=["POST"])
def end_all_sessions():
    if not EndSessionsForm().validate_on_submit():
        return _render(400)
    perform(services.end_all_sessions, current_user._get_current_object())
    logout_user()
    flash("Vous êtes déconnecté de tous les navigateurs et appareils, y compris ceux où vous aviez "
          "coché « Rester connecté ».", "info")
    return redirect(url_for("auth.login"))


# --- two-factor authentication (staff) -------------------------------------------------------------


def _staff():
    if not current_user.is_staff:
        abort(403)  # applicants sign in with their password (their accounts are approved by people)
    return current_user._get_current_object()


@bp.route("/double-authentification", methods=["GET", "POST"])
@second_factor_limit
def enrol():
    user = _staff()
    if user.totp_enabled_at is not None:
        flash("La double authentification est déjà active sur votre compte.", "info")
        return redirect(url_for("account.index"))
    form = CodeForm()
    action = url_for("account.enrol")
    if not form.validate_on_submit():
        return render_enrolment(user, form, action, 400 if request.method == "POST" else 200)
    result = enable_second_factor(user, form)
    if isinstance(result, str):
        form.code.errors = [*form.code.errors, result]
        return render_enrolment(user, form, action, 401)
    return render_template("auth/recovery_codes.html", codes=result, target=url_for("account.index"))


@bp.route("/double-authentification/desactiver", methods=["POST"])
@second_factor_limit
def disable():
    user = _staff()
    form = CodeForm()
    if not form.validate_on_submit():
        return _render(400, code_form=form)
    if error := perform(two_factor.disable, user, form.code.data, now=clock.now()):
        form.code.errors = [*form.code.errors, error.message]
        return _render(401 if user.role != "admin" else 403, code_form=form)
    flash("La double authentification est désactivée.", "info")
    return redirect(url_for("account.index"))


@bp.route("/codes-de-secours", methods=["POST"])
@second_factor_limit
def recovery_codes():
    user = _staff()
    form = CodeForm()
    if not form.validate_on_submit() or user.totp_enabled_at is None:
        return _render(400, code_form=form)
    codes: list[str] = []
    error = perform(lambda: codes.extend(two_factor.regenerate_recovery_codes(user, form.code.data,
                                                                              now=clock.now())))
    if error is not None:
        form.code.errors = [*form.code.errors, error.message]
        return _render(401, code_form=form)
    return render_template("auth/recovery_codes.html", codes=codes, target=url_for("account.index"))
