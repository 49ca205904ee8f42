"""The one parser of integers typed or sent by users (URL, query string, forms).

``str.isdigit()`` accepts "²" and "٣", ``int()`` accepts " 12 ", "+1", "1_000" and 4,300 digits, and
nothing bounds the result, so a crafted value reached the database as an overflow (a 500). Here an
integer is 1 to 10 ASCII digits, within explicit bounds (by default those of a 32-bit id column).
"""

from __future__ import annotations

import re

DB_INT_MAX = 2**31 - 1  # PostgreSQL ``integer``
_DIGITS = re.compile(r"[0-9]{1,10}")


def bounded_int(value: object, *, low: int = 1, high: int = DB_INT_MAX) -> int | None:
    """``value`` as an int when it is plain ASCII digits within ``low``..``high``, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _DIGITS.fullmatch(value):
        number = int(value)
    else:
        return None
    return number if low <= number <= high else None


def page_number(value: object) -> int:
    """A page number from the query string: 1 when absent or not a sensible page."""
    return bounded_int(value, high=1_000_000) or 1
