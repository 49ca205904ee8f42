"""Password rules: long enough, not a common password, not the e-mail address."""

from __future__ import annotations

from functools import cache
from pathlib import Path

MIN_LENGTH = 12
COMMON_PASSWORDS_FILE = Path(__file__).with_name("common-passwords.txt")


@cache
def common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def password_problems(password: str, email: str = "") -> list[str]:
    """What is wrong with ``password`` for the owner of ``email``, in French (empty: acceptable)."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"Le mot de passe doit comporter au moins {MIN_LENGTH} caractères "
                        f"(il en a {len(password)}). Une courte phrase facile à retenir convient très bien.")
    folded = password.strip().lower()
    if folded in common_passwords():
        problems.append("Ce mot de passe est trop courant : il figure dans les listes que les pirates "
                        "essaient en premier. Choisissez-en un autre.")
    email = email.strip().lower()
    if email and folded in {email, email.partition("@")[0]}:
        problems.append("Le mot de passe ne doit pas reprendre votre adresse électronique.")
    return problems
