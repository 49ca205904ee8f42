from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SubmitField
from wtforms.validators import DataRequired, Email, Length


def strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


class LoginForm(FlaskForm):
    email = EmailField(
        "Adresse électronique",
        filters=[strip],
        validators=[DataRequired("Indiquez votre adresse électronique."),
                    Email("Cette adresse électronique n'est pas valide."), Length(max=254)],
    )
    password = PasswordField("Mot de passe", validators=[DataRequired("Indiquez votre mot de passe.")])
    remember = BooleanField("Rester connecté")
    submit = SubmitField("Se connecter")
