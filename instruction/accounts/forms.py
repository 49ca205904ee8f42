from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    HiddenField,
    PasswordField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.meta import DefaultMeta
from wtforms.validators import DataRequired, Email, EqualTo, Length, ValidationError

from instruction.accounts.passwords import MIN_LENGTH, password_problems
from instruction.accounts.services import REFUSAL_REASON_MAX
from instruction.web.forms import strip


class FrenchForm(FlaskForm):
    """A Flask-WTF form (CSRF included) whose built-in messages are WTForms' French ones."""

    class Meta:
        locales = ("fr_FR", "fr")

        def get_translations(self, form):
            return DefaultMeta.get_translations(self, form)


def _email_field(label: str = "Adresse électronique") -> EmailField:
    return EmailField(
        label,
        filters=[strip],
        validators=[DataRequired("Indiquez votre adresse électronique."),
                    Email("Cette adresse électronique n'est pas valide (exemple : mairie@commune.fr)."),
                    Length(max=254, message="L'adresse électronique est trop longue.")],
    )


class LoginForm(FrenchForm):
    email = _email_field()
    password = PasswordField("Mot de passe", validators=[DataRequired("Indiquez votre mot de passe.")])
    remember = BooleanField("Rester connecté")
    submit = SubmitField("Se connecter")


class EmailForm(FrenchForm):
    """One e-mail address: resend the confirmation link, ask for a password reset."""

    email = _email_field()
    submit = SubmitField("Envoyer le lien")


class CollectiviteSearchForm(FrenchForm):
    class Meta:
        csrf = False  # a GET search, no state change

    q = StringField("Nom, code INSEE ou SIREN de votre collectivité", filters=[strip],
                    validators=[DataRequired("Tapez au moins deux lettres du nom, ou le code INSEE, "
                                             "ou le SIREN."),
                                Length(min=2, max=100, message="Tapez entre 2 et 100 caractères.")])


class _PasswordRules:
    """The password rules, checked against the e-mail field of the same form."""

    def __call__(self, form, field):
        email = form.email.data if hasattr(form, "email") else getattr(form, "account_email", "")
        problems = password_problems(field.data or "", email or "")
        if problems:
            raise ValidationError(" ".join(problems))


def _new_password_fields():
    password = PasswordField(
        "Mot de passe",
        description=f"Au moins {MIN_LENGTH} caractères. Une courte phrase est facile à retenir "
                    "et difficile à deviner, par exemple « le lavoir de la place fleurie ».",
        validators=[DataRequired("Choisissez un mot de passe."), _PasswordRules()])
    confirm = PasswordField(
        "Confirmez le mot de passe",
        validators=[DataRequired("Tapez à nouveau le mot de passe."),
                    EqualTo("password", message="Les deux mots de passe ne sont pas identiques.")])
    return password, confirm


class RegistrationForm(FrenchForm):
    collectivite_id = HiddenField(validators=[DataRequired("Choisissez d'abord votre collectivité.")])
    full_name = StringField("Prénom et nom", filters=[strip],
                            validators=[DataRequired("Indiquez vos prénom et nom."),
                                        Length(max=200, message="200 caractères au plus.")])
    email = _email_field("Adresse électronique professionnelle")
    password, confirm = _new_password_fields()
    submit = SubmitField("Créer mon compte")


class ResetPasswordForm(FrenchForm):
    password, confirm = _new_password_fields()
    submit = SubmitField("Enregistrer le nouveau mot de passe")

    def __init__(self, *args, account_email: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.account_email = account_email


class ApprovalForm(FrenchForm):
    """Approve an account waiting for approval: the CSRF token is all there is."""

    submit = SubmitField("Valider")


class RefusalForm(FrenchForm):
    """Refuse an account waiting for approval: the reason is sent to the person."""

    reason = TextAreaField(
        "Motif du refus (il est envoyé à la personne)", filters=[strip],
        validators=[DataRequired("Indiquez le motif du refus : il est envoyé à la personne."),
                    Length(max=REFUSAL_REASON_MAX,
                           message=f"Le motif tient en {REFUSAL_REASON_MAX} caractères au plus.")])
    submit = SubmitField("Refuser")


class ChangePasswordForm(FrenchForm):
    current = PasswordField("Mot de passe actuel",
                            validators=[DataRequired("Indiquez votre mot de passe actuel.")])
    password, confirm = _new_password_fields()
    submit = SubmitField("Changer le mot de passe")

    def __init__(self, *args, account_email: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.account_email = account_email


class EndSessionsForm(FrenchForm):
    """« Se déconnecter partout »: the CSRF token is all there is."""

    submit = SubmitField("Se déconnecter de tous les appareils")


class CodeForm(FrenchForm):
    """The second factor: six digits from the app, or a recovery code."""

    code = StringField("Code", filters=[strip],
                       description="Le code à six chiffres affiché par votre application "
                                   "d'authentification, ou l'un de vos codes de secours.",
                       validators=[DataRequired("Tapez le code affiché par votre application."),
                                   Length(max=20, message="Le code tient en 20 caractères au plus.")])
    submit = SubmitField("Valider")
