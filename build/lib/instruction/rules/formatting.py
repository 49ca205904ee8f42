"""French formatting of amounts, numbers, rates and dates (pure, no Babel).

The thousands separator and the space before "€" or "%" are NO-BREAK SPACE (U+00A0), so an
amount is never split across lines and every font renders it.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from instruction.rules.money import CENT

NBSP = "\u00a0"
MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
          "octobre", "novembre", "décembre")


def _group(digits: str) -> str:
    groups = []
    while len(digits) > 3:
        digits, tail = digits[:-3], digits[-3:]
        groups.insert(0, tail)
    groups.insert(0, digits)
    return NBSP.join(groups)


def format_integer(value: int) -> str:
    """1000 -> "1 000" (U+00A0 between groups)."""
    sign = "-" if value < 0 else ""
    return sign + _group(str(abs(value)))


def format_euros(amount: Decimal) -> str:
    """Decimal("12345.67") -> "12 345,67 €" (U+00A0 between groups and before €).

    Accepts a Decimal or an int, never a float.
    """
    if isinstance(amount, int) and not isinstance(amount, bool):
        amount = Decimal(amount)
    if not isinstance(amount, Decimal):
        raise TypeError(f"format_euros expects a Decimal, got {type(amount).__name__}")
    value = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    sign = "-" if value < 0 else ""
    units, _, cents = f"{abs(value):f}".partition(".")
    return f"{sign}{_group(units)},{cents}{NBSP}€"


def format_percent(rate: Decimal) -> str:
    """Decimal("0.40") -> "40 %"; Decimal("0.405") -> "40,5 %"."""
    text = f"{(rate * 100).normalize():f}"
    return text.replace(".", ",") + NBSP + "%"


def format_date_fr(day: date) -> str:
    """date(2021, 12, 31) -> "31 décembre 2021"; the first of a month is "1er"."""
    ordinal = "1er" if day.day == 1 else str(day.day)
    return f"{ordinal} {MONTHS[day.month - 1]} {day.year}"
