"""Money helpers: amounts are ``Decimal`` euros with exactly two places, never float."""

from __future__ import annotations

import re
from decimal import ROUND_DOWN, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")

# A plain non-negative decimal: ASCII digits, optional fraction. No sign, exponent, spaces,
# underscores or non-ASCII digits (all of which Decimal() would otherwise accept).
_PLAIN_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")


def parse_plain_decimal(text: str, max_places: int) -> Decimal:
    """Parse a non-negative decimal string such as "1800.00"; ValueError if it is anything else."""
    if not isinstance(text, str) or not _PLAIN_DECIMAL.fullmatch(text):
        raise ValueError(f"not a plain non-negative decimal string: {text!r}")
    value = Decimal(text)
    if -value.as_tuple().exponent > max_places:
        raise ValueError(f"more than {max_places} decimal places: {text!r}")
    return value


def to_cents(value: Decimal) -> Decimal:
    """The same amount with exactly two places; ValueError if that would lose a digit."""
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValueError(f"an amount must be a finite Decimal, got {value!r}")
    if value.as_tuple().exponent < -2 and value != value.quantize(CENT, rounding=ROUND_DOWN):
        raise ValueError(f"an amount has at most two decimal places, got {value}")
    return value.quantize(CENT, rounding=ROUND_DOWN)


def round_down(value: Decimal) -> Decimal:
    """Round down to the cent: a computed grant can never exceed what a rule allows."""
    return value.quantize(CENT, rounding=ROUND_DOWN)
