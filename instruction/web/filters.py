"""Jinja filters: French formatting of money, numbers and dates, in Europe/Paris."""

from __future__ import annotations

from datetime import date, datetime

from flask import Flask

from instruction.rules.formatting import format_date_fr, format_euros, format_integer
from instruction.rules.parameters import PARIS

# One colour per dossier state (a Bootstrap contextual name), wherever a state is shown.
STATE_STYLES = {
    "draft": "secondary", "received": "primary", "incomplete": "warning", "eligible": "info",
    "granted": "success", "paid": "dark", "ineligible": "danger", "refused": "danger",
    "withdrawn": "secondary", "expired": "secondary",
}


def euros(value) -> str:
    return "—" if value is None else format_euros(value)


def date_fr(value: date | datetime | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        value = value.astimezone(PARIS).date()
    return format_date_fr(value)


def datetime_fr(value: datetime | None) -> str:
    if value is None:
        return "—"
    local = value.astimezone(PARIS)
    return f"{format_date_fr(local.date())} à {local:%H:%M}"


def number_fr(value: int | None) -> str:
    return "—" if value is None else format_integer(value)


def state_style(state: str) -> str:
    return STATE_STYLES.get(state, "secondary")


def register_filters(app: Flask) -> None:
    app.add_template_filter(state_style, "state_style")
    app.add_template_filter(euros, "euros")
    app.add_template_filter(date_fr, "date_fr")
    app.add_template_filter(datetime_fr, "datetime_fr")
    app.add_template_filter(number_fr, "number_fr")
