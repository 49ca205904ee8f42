"""« Mon compte »: the signed-in user's security (password, sessions, two-factor authentication)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user, login_required, login_user, logout_user

from instruction.accounts import services
from instruction.accounts.forms import ChangePasswordForm, EndSessionsForm
from instruction.web.actions import perform

bp = Blueprint("account", __name__, url_prefix="/compte")


@bp.before_request
@login_required
def _signed_in():
    return None


def _render(status: int = 200, password_form: ChangePasswordForm | None = None):
    return render_template(
        "auth/account.html",
        password_form=password_form or ChangePasswordForm(formdata=None, account_email=current_user.email),
        end_form=EndSessionsForm(formdata=None)), status


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
