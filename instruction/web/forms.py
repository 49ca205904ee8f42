"""What every package's forms share: the ``strip`` filter, and the first error of a form for the
alert at the top of its page."""

from __future__ import annotations

from flask_wtf import FlaskForm


def strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


def first_error(form: FlaskForm) -> str:
    """The first validation message, for the alert at the top of the page."""
    for errors in form.errors.values():
        for error in errors if isinstance(errors, list) else [errors]:
            return str(error)
    return "Le formulaire contient une erreur."
