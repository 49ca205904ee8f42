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


MAX_TYPED_EUROS = Decimal("99999999.99")  # what a Numeric(12, 2) column holds, below a billion
_TYPED_SPACES = re.compile(r"[\s\u00a0\u202f']")  # thousands may be grouped by spaces or '
_TYPED_AMOUNT = re.compile(r"[0-9]+(\.[0-9]{1,2})?")


def parse_euros(text: str | None) -> Decimal:
    """A positive amount in euros as people type it, the one reading of the portal and the
    back-office: ``1 234,56``, ``1234.56``, ``1234,5 €``, ``12,5``, ``1'234 € HT`` -> Decimal with two
    places. ValueError with a French message otherwise (never through float)."""
    raw = (text or "").strip()
    if not raw:
        raise ValueError("Indiquez le montant en euros (par exemple 1 250,00).")
    cleaned = _TYPED_SPACES.sub("", raw).removesuffix("€").removesuffix("HT").removesuffix("€")
    if cleaned.startswith("-"):
        raise ValueError("Le montant ne peut pas être négatif.")
    if "," in cleaned and "." in cleaned:
        raise ValueError("Écrivez le montant sans point entre les milliers, par exemple 1234,56.")
    cleaned = cleaned.replace(",", ".")
    if not _TYPED_AMOUNT.fullmatch(cleaned):
        if re.fullmatch(r"[0-9]+\.[0-9]{3,}", cleaned):
            raise ValueError("Le montant a au plus deux chiffres après la virgule (les centimes).")
        raise ValueError(f"« {raw[:30]} » n'est pas un montant : écrivez par exemple 1250 ou 1 250,50.")
    value = Decimal(cleaned).quantize(CENT)
    if value <= 0:
        raise ValueError("Le montant doit être supérieur à zéro.")
    if value > MAX_TYPED_EUROS:
        raise ValueError("Ce montant est trop élevé : vérifiez-le.")
    return value
