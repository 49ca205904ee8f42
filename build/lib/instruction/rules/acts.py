"""Rules of the legal acts: when silence becomes a decision, and amounts written in French words.

Pure: instants are arguments, dates are Europe/Paris calendar dates.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta
from decimal import Decimal

from instruction.rules.money import CENT
from instruction.rules.parameters import paris_date


def add_months(day: date, months: int) -> date:
    """The same day number ``months`` later; a day that the target month lacks (31 → 30 April,
    29–31 → February) becomes the last day of that month (docs/decisions.md)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def implicit_decision_date(received_at: datetime, completed_at: datetime | None,
                           months: int) -> date:
    """The Paris date on which silence on the request becomes an implicit decision (CRPA L231-4:
    rejection after two months for a request of a financial nature).

    The period starts on the Paris day the request was received or, when documents were
    requested, the day it was completed (L114-5: the period runs from completion); the decision
    is born on the same day number ``months`` later."""
    start = completed_at if completed_at is not None else received_at
    return add_months(paris_date(start), months)


def answer_due_date(requested_at: datetime, days: int) -> date:
    """The last Paris day on which the requested documents may be provided (L114-5)."""
    return paris_date(requested_at) + timedelta(days=days)


# --- amounts in words --------------------------------------------------------------------------

_UNITS = ("zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix",
          "onze", "douze", "treize", "quatorze", "quinze", "seize", "dix-sept", "dix-huit",
          "dix-neuf")
_TENS = {2: "vingt", 3: "trente", 4: "quarante", 5: "cinquante", 6: "soixante"}


def _below_hundred(n: int) -> str:
    if n < 20:
        return _UNITS[n]
    tens, unit = divmod(n, 10)
    if tens in (7, 9):  # soixante-dix…, quatre-vingt-dix…
        base = "soixante" if tens == 7 else "quatre-vingt"
        if tens == 7 and unit == 1:
            return "soixante et onze"
        return f"{base}-{_UNITS[10 + unit]}"
    if tens == 8:
        return "quatre-vingts" if unit == 0 else f"quatre-vingt-{_UNITS[unit]}"
    if unit == 0:
        return _TENS[tens]
    if unit == 1:
        return f"{_TENS[tens]} et un"
    return f"{_TENS[tens]}-{_UNITS[unit]}"


def _below_thousand(n: int, *, before_noun: bool) -> str:
    """``before_noun``: the group is followed by "mille" (an invariable numeral), so "cent" and
    "vingt" lose their plural s ("deux cent mille", "quatre-vingt mille")."""
    hundreds, rest = divmod(n, 100)
    words = []
    if hundreds:
        if hundreds == 1:
            words.append("cent")
        else:
            plural = rest == 0 and not before_noun
            words.append(f"{_UNITS[hundreds]} cent{'s' if plural else ''}")
    if rest:
        text = _below_hundred(rest)
        if before_noun and text == "quatre-vingts":
            text = "quatre-vingt"
        words.append(text)
    return " ".join(words)


_SCALES = ((10**9, "milliard"), (10**6, "million"))


def integer_in_words(n: int) -> str:
    """French cardinal number, traditional spelling (hyphens below one hundred, "et un")."""
    if n < 0:
        raise ValueError("a negative amount has no words here")
    if n == 0:
        return "zéro"
    words = []
    for size, name in _SCALES:
        count, n = divmod(n, size)
        if count:
            # "million" and "milliard" are nouns: "deux cents millions", "quatre-vingts millions".
            words.append(f"{integer_in_words(count)} {name}{'s' if count > 1 else ''}")
    thousands, n = divmod(n, 1000)
    if thousands:
        words.append("mille" if thousands == 1 else
                     f"{_below_thousand(thousands, before_noun=True)} mille")
    if n:
        words.append(_below_thousand(n, before_noun=False))
    return " ".join(words)


def amount_in_words(amount: Decimal) -> str:
    """Decimal("1234.56") -> "mille deux cent trente-quatre euros et cinquante-six centimes".

    "d'euros" after a round number of millions or milliards ("un million d'euros")."""
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount < 0:
        raise ValueError(f"expected a non-negative Decimal amount, got {amount!r}")
    cents_total = int((amount.quantize(CENT) * 100).to_integral_value())
    euros, cents = divmod(cents_total, 100)
    parts = []
    if euros or not cents:
        words = integer_in_words(euros)
        unit = "euro" if euros <= 1 else "euros"
        if euros >= 10**6 and euros % 10**6 == 0:
            parts.append(f"{words} d'{unit}")
        else:
            parts.append(f"{words} {unit}")
    if cents:
        parts.append(f"{integer_in_words(cents)} centime{'s' if cents > 1 else ''}")
    return " et ".join(parts)
