"""One reading of typed euros for the portal and the back-office (``rules.money.parse_euros``)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from instruction.rules.money import parse_euros

READ = [
    ("1 234,56", "1234.56"), ("1234.56", "1234.56"), ("1234,56", "1234.56"),
    ("1234.5 €", "1234.50"), ("1 234,5 €", "1234.50"), ("12,5", "12.50"), ("12.5", "12.50"),
    ("1\u202f234,56", "1234.56"), ("1\u00a0234,56 €", "1234.56"), ("1'234", "1234.00"),
    ("  250 ", "250.00"), ("250€", "250.00"), ("1 250,00 € HT", "1250.00"), ("0,01", "0.01"),
    ("99999999,99", "99999999.99"),
]
REFUSED = [
    ("", "Indiquez le montant"), ("abc", "n'est pas un montant"), ("-12", "négatif"),
    ("1.234,56", "sans point entre les milliers"), ("12,345", "au plus deux chiffres"),
    ("0", "supérieur à zéro"), ("0,00", "supérieur à zéro"), ("100000000", "trop élevé"),
    ("1e3", "n'est pas un montant"), ("١٢٣", "n'est pas un montant"), ("12,", "n'est pas un montant"),
    ("NaN", "n'est pas un montant"),
]


@pytest.mark.parametrize(("text", "expected"), READ)
def test_typed_amounts_read_the_same_everywhere(text, expected):
    value = parse_euros(text)
    assert value == Decimal(expected) and str(value) == expected


@pytest.mark.parametrize(("text", "message"), REFUSED)
def test_what_is_not_an_amount_is_refused_in_french(text, message):
    with pytest.raises(ValueError, match=message):
        parse_euros(text)


def test_the_portal_and_the_back_office_fields_read_alike(app):
    from flask_wtf import FlaskForm
    from werkzeug.datastructures import MultiDict

    from instruction.backoffice.forms import EurosField
    from instruction.portal.forms import AmountField

    class Portal(FlaskForm):
        amount = AmountField()

    class BackOffice(FlaskForm):
        amount = EurosField()

    with app.test_request_context():
        for text, expected in READ:
            for form_class in (Portal, BackOffice):
                form = form_class(formdata=MultiDict({"amount": text}), meta={"csrf": False})
                assert form.validate() and form.amount.data == Decimal(expected), (form_class, text)
        for text, message in REFUSED[1:]:  # (an empty back-office amount is the form's own "required")
            for form_class in (Portal, BackOffice):
                form = form_class(formdata=MultiDict({"amount": text}), meta={"csrf": False})
                assert not form.validate() and message in " ".join(form.amount.errors), (form_class, text)
