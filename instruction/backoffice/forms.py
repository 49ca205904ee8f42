"""Forms of the dossier actions. They check the shape of the input (French messages); the
services decide whether the action is allowed and whether the amount fits."""

from __future__ import annotations

import secrets
from datetime import datetime
from decimal import Decimal

from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, HiddenField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from instruction.dossiers.workflow import TRANSITIONS
from instruction.rules.money import parse_euros
from instruction.web.forms import strip


def format_amount_input(value: Decimal) -> str:
    """The value an amount input shows: ``1234,50`` (no grouping, so it reads back as typed)."""
    return f"{value:.2f}".replace(".", ",")


class EurosField(StringField):
    """An amount in euros typed with a comma or a dot, read as ``Decimal``."""

    def process_formdata(self, valuelist):
        self.data = None
        if valuelist and valuelist[0].strip():
            self.data = parse_euros(valuelist[0])  # its ValueError is the field's French error

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]
        return format_amount_input(self.data) if self.data is not None else ""


class FrenchDateField(DateField):
    """A date from a date input (``2026-12-01``) or typed as ``01/12/2026``."""

    def __init__(self, label=None, validators=None, **kwargs):
        super().__init__(label, validators, format=["%Y-%m-%d", "%d/%m/%Y"], **kwargs)

    def process_formdata(self, valuelist):
        self.data = None
        if not valuelist or not valuelist[0].strip():
            return
        text = valuelist[0].strip()
        for fmt in self.format:
            try:
                self.data = datetime.strptime(text, fmt).date()
                return
            except ValueError:
                continue
        raise ValueError(f"« {text[:30]} » n'est pas une date valide (attendu : JJ/MM/AAAA).")


class ActionForm(FlaskForm):
    """An action without input (CSRF only)."""


class ReasonForm(FlaskForm):
    reason = TextAreaField("Motif", filters=[strip], validators=[
        DataRequired("Indiquez un motif : il est communiqué au demandeur et conservé dans l'historique."),
        Length(max=5000, message="Le motif ne peut pas dépasser 5 000 caractères."),
    ])


class RequestDocumentsForm(ReasonForm):
    due_on = FrenchDateField("Date limite de réponse")  # empty: the acts' rule


def new_token() -> str:
    return secrets.token_urlsafe(24)


class OneTimeForm(FlaskForm):
    """A form that moves money carries a one-time token: sent twice (a double click, a replayed
    POST), it is done once (see ``services._claim``)."""

    token = HiddenField(default=new_token, validators=[
        DataRequired("Le formulaire est incomplet : rechargez la page et recommencez."),
        Length(min=16, max=64, message="Le formulaire est incomplet : rechargez la page et recommencez."),
    ])


class HiddenEurosField(EurosField):
    widget = HiddenField.widget


class GrantForm(OneTimeForm):
    amount = EurosField("Montant attribué (€ HT)", validators=[InputRequired("Indiquez le montant attribué.")])


class CancelGrantForm(OneTimeForm, ReasonForm):
    pass


class CancelPaymentForm(OneTimeForm, ReasonForm):
    pass


class PaymentForm(OneTimeForm):
    amount = EurosField("Montant du versement (€)", validators=[InputRequired("Indiquez le montant du versement.")])
    paid_on = FrenchDateField("Date du versement", validators=[InputRequired("Indiquez la date du versement.")])
    reference = StringField("Référence (mandat, titre…)", filters=[strip], validators=[
        DataRequired("Indiquez la référence du versement (mandat, titre…)."),
        Length(max=100, message="La référence ne peut pas dépasser 100 caractères."),
    ])
    final = BooleanField("Versement final : solde le dossier et libère le reste non versé de l'enveloppe")
    # Set by the confirmation step of a final payment below the grant: the amount it releases.
    confirmed_release = HiddenEurosField(validators=[Optional()])


REASON_LABELS = {
    "request_documents": "Pièces demandées (message au demandeur)",
    "declare_ineligible": "Motif d'inéligibilité",
    "refuse": "Motif du refus",
    "cancel_grant": "Motif de l'annulation",
    "cancel_payment": "Motif de l'annulation du versement",
    "reopen": "Motif de la réouverture",
    "withdraw": "Motif du retrait",
}
PAYMENT_ACTIONS = ("record_payment", "record_final_payment")


def form_class(action: str) -> type[FlaskForm]:
    if action == "grant":
        return GrantForm
    if action in PAYMENT_ACTIONS:
        return PaymentForm
    if action == "cancel_grant":
        return CancelGrantForm
    if action == "cancel_payment":
        return CancelPaymentForm
    if action == "request_documents":
        return RequestDocumentsForm
    if action in TRANSITIONS and TRANSITIONS[action].needs_reason:
        return ReasonForm
    return ActionForm


