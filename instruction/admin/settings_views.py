"""The service's identity and the texts of the legal pages, edited by an admin (audited)."""

from __future__ import annotations

from datetime import datetime

from flask import flash, redirect, render_template, url_for
from flask_login import current_user
from wtforms import StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from instruction import clock
from instruction.accounts.forms import FrenchForm
from instruction.accounts.models import User
from instruction.admin import audit
from instruction.admin.people import _require_admin
from instruction.admin.views import bp
from instruction.settings import services as settings
from instruction.web.actions import perform
from instruction.web.forms import strip

MULTILINE = ("postal_address", "tribunal_address")


class IdentityForm(FrenchForm):
    submit = SubmitField("Enregistrer")


for _name in settings.IDENTITY_FIELDS:
    _label = settings.FIELD_LABELS[_name]
    _limit = settings.max_length(_name)
    _validators = [DataRequired(f"{_label} : ce champ est obligatoire.")]
    if _limit:
        _validators.append(Length(max=_limit, message=f"{_label} : {_limit} caractères au plus."))
    setattr(IdentityForm, _name, (TextAreaField if _name in MULTILINE else StringField)(
        _label, filters=[strip], validators=_validators))
for _name, _label in settings.LEGAL_TEXT_LABELS.items():
    setattr(IdentityForm, _name, TextAreaField(_label, filters=[strip], validators=[
        Optional(), Length(max=settings.LEGAL_TEXT_MAX, message=f"{_label} : trop long.")]))


def save(actor: User, identity: dict[str, str], texts: dict[str, str], *, now: datetime) -> None:
    """Update the identity and the legal texts; one audit event with what changed."""
    _require_admin(actor)
    before, after = settings.update_identity(identity, now=now)
    texts_before, texts_after = settings.update_legal_texts(texts, now=now)
    changed = [n for n in settings.IDENTITY_FIELDS if getattr(before, n) != getattr(after, n)]
    changed_texts = [n for n in settings.LEGAL_TEXT_FIELDS if texts_before[n] != texts_after[n]]
    if not changed and not changed_texts:
        return
    audit.record(actor, "update_settings", subject_kind="settings", subject_id=settings.ROW_ID,
                 label="Identité du service et pages légales", now=now,
                 before={**{settings.FIELD_LABELS[n]: getattr(before, n) for n in changed},
                         **{settings.LEGAL_TEXT_LABELS[n]: f"{len(texts_before[n])} caractères" for n in changed_texts}},
                 after={**{settings.FIELD_LABELS[n]: getattr(after, n) for n in changed},
                        **{settings.LEGAL_TEXT_LABELS[n]: f"{len(texts_after[n])} caractères" for n in changed_texts}})


def _page(form: IdentityForm, status: int = 200):
    return render_template("admin/settings.html", form=form, identity_fields=settings.IDENTITY_FIELDS,
                           text_fields=settings.LEGAL_TEXT_FIELDS), status


@bp.route("/identite", methods=["GET", "POST"])
def settings_page():
    form = IdentityForm()
    if not form.is_submitted():
        current = {**settings.current_identity().as_dict(), **settings.legal_texts()}
        return _page(IdentityForm(formdata=None, data=current))
    if not form.validate():
        return _page(form, 400)
    error = perform(save, current_user, {n: form[n].data for n in settings.IDENTITY_FIELDS},
                    {n: form[n].data or "" for n in settings.LEGAL_TEXT_FIELDS}, now=clock.now())
    if error is not None:
        form.service_name.errors = [str(error)]
        return _page(form, error.status)
    flash("L'identité du service est enregistrée : les prochains accusés de réception, courriers et pages "
          "l'utilisent ; les actes déjà émis gardent celle de leur date.", "success")
    return redirect(url_for("admin.settings_page"))
