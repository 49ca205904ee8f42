"""Forms of the administration pages (French messages, CSRF by Flask-WTF)."""

from __future__ import annotations

from flask_wtf.file import FileAllowed, FileField, FileRequired
from wtforms import DateField, EmailField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Email, Length, Optional, Regexp

from instruction.accounts.forms import FrenchForm
from instruction.accounts.models import ROLE_LABELS, STAFF_ROLES
from instruction.web.forms import strip

STAFF_CHOICES = [(role, ROLE_LABELS[role]) for role in STAFF_ROLES]


def _email(label: str = "Adresse électronique") -> EmailField:
    return EmailField(label, filters=[strip], validators=[
        DataRequired("Indiquez l'adresse électronique."),
        Email("Cette adresse électronique n'est pas valide (exemple : prenom.nom@bourgognefranchecomte.fr)."),
        Length(max=254, message="L'adresse électronique est trop longue.")])


def _name(label: str = "Nom et prénom") -> StringField:
    return StringField(label, filters=[strip], validators=[
        DataRequired("Indiquez le nom de la personne."), Length(max=200, message="200 caractères au plus.")])


class InviteForm(FrenchForm):
    full_name = _name()
    email = _email()
    role = SelectField("Rôle", choices=STAFF_CHOICES, validate_choice=True)
    submit = SubmitField("Envoyer l'invitation")


class RoleForm(FrenchForm):
    role = SelectField("Nouveau rôle", choices=STAFF_CHOICES, validate_choice=True)
    submit = SubmitField("Changer le rôle")


class ReasonForm(FrenchForm):
    reason = TextAreaField("Motif (facultatif)", filters=[strip],
                           validators=[Optional(), Length(max=1000, message="1 000 caractères au plus.")])
    submit = SubmitField("Confirmer")


class ConfirmForm(FrenchForm):
    """A button: the CSRF token is all there is."""

    submit = SubmitField("Confirmer")


class AgentForm(FrenchForm):
    full_name = _name()
    email = _email()
    submit = SubmitField("Rattacher l'agent")


# --- territory -------------------------------------------------------------------------------------

_SIREN = Regexp(r"^\s*\d{9}\s*$", message="Le SIREN compte 9 chiffres.")


class SivosForm(FrenchForm):
    name = StringField("Nom du SIVOS", filters=[strip], validators=[
        DataRequired("Indiquez le nom du SIVOS."), Length(max=200, message="200 caractères au plus.")])
    siren = StringField("SIREN", filters=[strip], validators=[DataRequired("Indiquez le SIREN."), _SIREN])
    communes = TextAreaField("Communes membres (codes INSEE, séparés par des espaces, virgules ou points-virgules)",
                             filters=[strip], validators=[DataRequired("Indiquez au moins une commune membre.")])
    epci = StringField("SIREN de l'EPCI de rattachement (facultatif : celui de la majorité des communes)",
                       filters=[strip], validators=[Optional(), _SIREN])
    submit = SubmitField("Enregistrer le SIVOS")


class CsvForm(FrenchForm):
    file = FileField("Fichier CSV", validators=[FileRequired("Choisissez un fichier CSV."),
                                                FileAllowed(["csv", "txt"], "Le fichier doit être un CSV.")])
    submit = SubmitField("Importer")


class VilleCentreForm(FrenchForm):
    commune = SelectField("Ville centre", coerce=int, validate_choice=True)
    submit = SubmitField("Changer la ville centre")


class ReferenceFileForm(FrenchForm):
    file = FileField("Fichier de données (JSON, même format que le fichier livré)", validators=[
        FileRequired("Choisissez un fichier de données."),
        FileAllowed(["json"], "Le fichier doit être au format JSON.")])
    submit = SubmitField("Prévisualiser les changements")


class SearchForm(FrenchForm):
    class Meta:
        csrf = False

    q = StringField("Nom, code INSEE ou SIREN", filters=[strip])
    kind = SelectField("Type", choices=[("", "Tous"), ("commune", "Communes"), ("epci", "EPCI"),
                                        ("sivos", "SIVOS")], validate_choice=False)


# --- campaigns -------------------------------------------------------------------------------------


class CampaignForm(FrenchForm):
    title = StringField("Intitulé", filters=[strip], validators=[
        DataRequired("Indiquez l'intitulé de la campagne."), Length(max=200, message="200 caractères au plus.")])
    code = StringField("Code (lettres minuscules, chiffres et tirets)", filters=[strip], validators=[
        DataRequired("Indiquez un code."), Length(max=30, message="30 caractères au plus."),
        Regexp(r"^[a-z0-9][a-z0-9-]*$", message="Le code ne contient que des lettres minuscules, "
                                                "des chiffres et des tirets.")])
    reference_prefix = StringField("Préfixe des références de dossier", filters=[strip], validators=[
        DataRequired("Indiquez le préfixe."), Length(max=12, message="12 caractères au plus."),
        Regexp(r"^[A-Z0-9]+$", message="Le préfixe ne contient que des majuscules et des chiffres.")])
    opens_on = DateField("Premier jour de dépôt", validators=[DataRequired("Indiquez une date valide.")])
    last_day = DateField("Dernier jour de dépôt (inclus)", validators=[DataRequired("Indiquez une date valide.")])
    submit = SubmitField("Créer la campagne")


class CampaignDatesForm(FrenchForm):
    message = TextAreaField("Message aux demandeurs qui ont un brouillon (facultatif)", filters=[strip],
                            validators=[Optional(), Length(max=2000, message="2 000 caractères au plus.")])
    submit = SubmitField("Confirmer")


class ExtensionForm(FrenchForm):
    reference = StringField("Référence du dossier", filters=[strip],
                            validators=[DataRequired("Indiquez la référence du dossier.")])
    last_day = DateField("Nouveau dernier jour de dépôt (inclus)",
                         validators=[DataRequired("Indiquez une date valide.")])
    reason = TextAreaField("Motif (il est communiqué au demandeur)", filters=[strip], validators=[
        DataRequired("Indiquez le motif de la prolongation."), Length(max=1000, message="1 000 caractères au plus.")])
    submit = SubmitField("Prolonger la date limite")
