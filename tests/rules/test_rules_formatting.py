from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from instruction.rules.formatting import (
    format_date_fr,
    format_euros,
    format_integer,
    format_percent,
)

NB = "\u00a0"


@pytest.mark.parametrize(("amount", "text"), [
    ("12345.67", f"12{NB}345,67{NB}€"),
    ("0", f"0,00{NB}€"),
    ("0.5", f"0,50{NB}€"),
    ("999.99", f"999,99{NB}€"),
    ("1000", f"1{NB}000,00{NB}€"),
    ("1234567.89", f"1{NB}234{NB}567,89{NB}€"),
    ("-30000.00", f"-30{NB}000,00{NB}€"),
])
def test_format_euros(amount, text):
    assert format_euros(Decimal(amount)) == text


def test_format_euros_accepts_int_refuses_float():
    assert format_euros(2500) == f"2{NB}500,00{NB}€"
    with pytest.raises(TypeError):
        format_euros(2500.0)


@given(st.integers(min_value=0, max_value=10**12))
def test_format_euros_round_trips(cents):
    amount = Decimal(cents).scaleb(-2)
    text = format_euros(amount)
    assert Decimal(text.removesuffix(f"{NB}€").replace(NB, "").replace(",", ".")) == amount


def test_format_integer_and_percent():
    assert format_integer(50000) == f"50{NB}000"
    assert format_integer(999) == "999"
    assert format_percent(Decimal("0.40")) == f"40{NB}%"
    assert format_percent(Decimal("0.405")) == f"40,5{NB}%"


@pytest.mark.parametrize(("day", "text"), [
    (date(2021, 12, 31), "31 décembre 2021"),
    (date(2021, 1, 1), "1er janvier 2021"),
    (date(2027, 6, 30), "30 juin 2027"),
    (date(2021, 8, 2), "2 août 2021"),
    (date(2021, 2, 14), "14 février 2021"),
])
def test_format_date_fr(day, text):
    assert format_date_fr(day) == text
