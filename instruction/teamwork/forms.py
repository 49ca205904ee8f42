"""Forms of the thread, notes, labels, assignment and preferences (shape only: the services
decide)."""

from __future__ import annotations

from wtforms import MultipleFileField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from instruction.accounts.forms import FrenchForm as FlaskForm
from instruction.teamwork.models import LABEL_COLOURS, MESSAGE_EMAIL_CHOICES
from instruction.teamwork.services import MAX_MESSAGE, MAX_NOTE
from instruction.web.forms import strip


class MessageForm(FlaskForm):
    body = TextAreaField("Votre message", validators=[
        Length(max=MAX_MESSAGE, message=f"Le message ne peut pas dépasser {MAX_MESSAGE} caractères.")])
    files = MultipleFileField("Pièces jointes (facultatif)")


class NoteForm(FlaskForm):
    body = TextAreaField("Note privée (visible du seul personnel de la Région)", filters=[strip], validators=[
        DataRequired("La note est vide."),
        Length(max=MAX_NOTE, message=f"La note ne peut pas dépasser {MAX_NOTE} caractères.")])


def _int_or_none(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class LabelPickForm(FlaskForm):
    label_id = SelectField("Étiquette", coerce=_int_or_none, validate_choice=False,
                           validators=[DataRequired("Choisissez une étiquette.")])


class AssignForm(FlaskForm):
    assignee_id = SelectField("Attribuer à", coerce=_int_or_none, validate_choice=False,
                              validators=[DataRequired("Choisissez un instructeur.")])


class LabelForm(FlaskForm):
    name = StringField("Nom", filters=[strip], validators=[
        DataRequired("Donnez un nom à l'étiquette."),
        Length(max=60, message="Le nom d'une étiquette fait au plus 60 caractères.")])
    colour = SelectField("Couleur", choices=list(LABEL_COLOURS.items()), validate_choice=False)


class PreferenceForm(FlaskForm):
    message_emails = RadioField("Les messages des demandeurs", choices=list(MESSAGE_EMAIL_CHOICES.items()),
                                validate_choice=False, validators=[DataRequired("Choisissez une option.")])
