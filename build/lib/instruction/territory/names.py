"""Folding of place names for search: "Bessey-lès-Cîteaux" and "bessey les citeaux" meet."""

from __future__ import annotations

import re
import unicodedata

_SEPARATORS = re.compile(r"[\s\-'’]+")


def fold(text: str) -> str:
    """Lower case, no accents, hyphens and apostrophes as spaces, spaces collapsed."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SEPARATORS.sub(" ", bare.lower().replace("œ", "oe").replace("æ", "ae")).strip()
