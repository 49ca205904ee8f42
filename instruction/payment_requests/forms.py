"""Forms of payment requests: shapes and French messages; the services decide the rest."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, FileField, RadioField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from instruction.backoffice.forms import (
    EurosField,
    FrenchDateField,
    HiddenEurosField,
    OneTimeForm,
)
from instruction.payment_requests.models import ATTESTATION, KIND_LABELS
from instruction.portal.forms import LineForm
from instruction.web.forms import strip


class StartForm(FlaskForm):
    kind = RadioField("Que demandez-vous ?", choices=[
        ("acompte", f"{KIND_LABELS['acompte']} : une partie de la subvention, sur les dépenses déjà payées"),
        ("solde", f"{KIND_LABELS['solde']} : le reste de la subvention, le projet étant terminé"),
    ], validators=[InputRequired("Choisissez un acompte ou le solde.")])
    submit = SubmitField("Commencer la demande de versement")


class ExpenseForm(LineForm):
    invoice = FileField("Facture acquittée (PDF, JPEG ou PNG)",
                        description="La facture portant la mention « acquittée », ou accompagnée de la "
                                    "preuve du paiement.")
    submit = SubmitField("Ajouter la dépense réalisée")


class SendForm(FlaskForm):
    attest = BooleanField(ATTESTATION)
    submit = SubmitField("Envoyer la demande de versement")


class PayForm(OneTimeForm):
    amount = EurosField("Montant versé (€)", validators=[InputRequired("Indiquez le montant du versement.")])
    paid_on = FrenchDateField("Date du versement", validators=[InputRequired("Indiquez la date du versement.")])
    reference = StringField("Référence (mandat, titre…)", filters=[strip], validators=[
        DataRequired("Indiquez la référence du versement (mandat, titre…)."),
        Length(max=100, message="La référence ne peut pas dépasser 100 caractères."),
    ])
    reason = TextAreaField("Motif, si vous versez moins que le montant calculé", filters=[strip], validators=[
        Optional(), Length(max=5000, message="Le motif ne peut pas dépasser 5 000 caractères.")])
    confirmed_release = HiddenEurosField(validators=[Optional()])
    submit = SubmitField("Verser")


class SettleForm(OneTimeForm):
    """A balance that justifies nothing more: settled at 0,00 €, without payment (no mandate, no date)."""

    confirmed_release = HiddenEurosField(validators=[Optional()])
    submit = SubmitField("Solder à 0,00 €")


class ReturnForm(FlaskForm):
    message = TextAreaField("Message au demandeur (ce qu'il doit corriger)", filters=[strip], validators=[
        DataRequired("Écrivez au demandeur ce qu'il doit corriger."),
        Length(max=5000, message="Le message ne peut pas dépasser 5 000 caractères."),
    ])
    submit = SubmitField("Renvoyer la demande au demandeur")
