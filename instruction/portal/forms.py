"""Portal forms. Choices come from the rule parameters (through ``portal.services.line_options``);
amounts are parsed to Decimal, never float, with French messages."""

from __future__ import annotations

from decimal import Decimal

from wtforms import (
    HiddenField,
    IntegerField,
    MultipleFileField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from instruction.accounts.forms import FrenchForm
from instruction.rules.money import parse_euros
from instruction.web.forms import strip
from instruction.web.numbers import bounded_int


def parse_amount(text: str | None) -> Decimal:
    """An amount HT: ``rules.money.parse_euros``, the product's one reading of typed euros."""
    if not (text or "").strip():
        raise ValueError("Indiquez le montant hors taxes, en euros (par exemple 1 250,00).")
    return parse_euros(text)


def _optional_int(value):
    if value in (None, ""):
        return None
    number = bounded_int(value)
    if number is None:
        raise ValueError("Choix invalide.")
    return number


class AmountField(StringField):
    """Euros HT typed the French way or the English way; ``data`` is a Decimal (or None)."""

    def process_formdata(self, valuelist):
        self.raw = valuelist[0] if valuelist else ""
        self.data = None
        if valuelist:
            try:
                self.data = parse_amount(valuelist[0])
            except ValueError as error:
                self.processing_error = str(error)

    def pre_validate(self, form):
        if getattr(self, "processing_error", None):
            raise ValidationError(self.processing_error)

    def _value(self):
        if getattr(self, "raw", None) is not None:
            return self.raw  # what was typed, as it was typed
        if self.data is None:
            return ""
        return f"{self.data:.2f}".replace(".", ",")


MAX_MONTHS = 600


class MonthsField(IntegerField):
    def process_formdata(self, valuelist):
        if not valuelist or valuelist[0] in ("", None):
            self.data = None
            return
        self.data = bounded_int(valuelist[0].strip(), low=0, high=10**9)
        if self.data is None:
            raise ValueError("Indiquez un nombre entier de mois, par exemple 36.")


class NewDossierForm(FrenchForm):
    aid_number = HiddenField(validators=[DataRequired("Choisissez une aide.")])
    client_token = HiddenField(validators=[DataRequired("Le formulaire est incomplet : rechargez la page.")])
    title = StringField("Intitulé du projet (facultatif)", filters=[strip],
                        validators=[Length(max=200, message="200 caractères au plus.")])
    submit = SubmitField("Créer un dossier")


class TitleForm(FrenchForm):
    title = StringField("Intitulé du projet", filters=[strip],
                        validators=[Length(max=200, message="200 caractères au plus.")])
    submit = SubmitField("Enregistrer l'intitulé")


class LineForm(FrenchForm):
    category = SelectField("Catégorie de dépense", validate_choice=False,
                           validators=[InputRequired("Choisissez la catégorie de la dépense.")])
    label = StringField("Description de la dépense", filters=[strip],
                        validators=[DataRequired("Décrivez la dépense, par exemple « Ordinateur portable "
                                                 "pour le secrétariat »."),
                                    Length(max=300, message="300 caractères au plus.")])
    amount_ht = AmountField("Montant HT en euros", description="Hors taxes, tel qu'il figure sur la facture "
                                                                "ou le devis, par exemple 1 250,00.")
    pack = SelectField("Pack", coerce=_optional_int, validate_choice=False)
    months = MonthsField("Durée de la licence, en mois", validators=[
        Optional(), NumberRange(min=1, max=MAX_MONTHS, message=f"Indiquez une durée entre 1 et {MAX_MONTHS} mois.")])
    submit = SubmitField("Enregistrer la dépense")

    def __init__(self, *args, options=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.options = options
        self.category.choices = [("", "— Choisissez —"), *options.categories]
        if options.packs:
            self.pack.choices = [("", "— Choisissez —"), *[(str(n), label) for n, label in options.packs]]
        else:
            del self.pack
        if options.licence_max_months is None and "licence" not in dict(options.categories):
            del self.months
        elif options.licence_max_months:
            self.months.description = (f"Pour une licence seulement. Au plus {options.licence_max_months} mois "
                                       "sont pris en compte : une licence plus longue est retenue au prorata.")

    def validate_category(self, field):
        allowed = dict(self.options.categories)
        if field.data not in allowed:
            raise ValidationError("Cette catégorie n'est pas éligible à cette aide : choisissez parmi "
                                  + ", ".join(label.lower() for label in allowed.values()) + ".")

    def validate_pack(self, field):
        if field.data not in dict(self.options.packs):
            raise ValidationError("Choisissez le pack auquel la dépense se rattache.")

    def validate(self, extra_validators=None):
        valid = super().validate(extra_validators)
        months = self.months
        if months is not None and self.category.data == "licence" and months.data is None and not months.errors:
            months.errors.append("Indiquez la durée de la licence en mois (par exemple 12 ou 36).")
            valid = False
        return valid


class UploadForm(FrenchForm):
    files = MultipleFileField("Factures ou devis (PDF, JPEG ou PNG)")
    submit = SubmitField("Joindre")


class SubmitForm(FrenchForm):
    submit = SubmitField("Déposer le dossier")


class ResubmitForm(FrenchForm):
    message = TextAreaField("Votre réponse à l'instructeur", filters=[strip],
                            validators=[Length(max=5000, message="5 000 caractères au plus.")])
    line_id = SelectField("Rattacher les pièces à la dépense", coerce=_optional_int)
    files = MultipleFileField("Pièces demandées (PDF, JPEG ou PNG)")
    submit = SubmitField("Renvoyer le dossier complété")


class WithdrawForm(FrenchForm):
    reason = TextAreaField("Motif du retrait", filters=[strip],
                           validators=[DataRequired("Indiquez pourquoi vous retirez le dossier : la Région "
                                                    "le conserve dans l'historique."),
                                       Length(max=2000, message="2 000 caractères au plus.")])
    submit = SubmitField("Retirer définitivement le dossier")


class ConfirmForm(FrenchForm):
    """A button that only needs its CSRF token (remove a line, a document)."""

    submit = SubmitField("Supprimer")
