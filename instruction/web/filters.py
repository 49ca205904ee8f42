"""Jinja filters: French formatting of money and dates, in Europe/Paris."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import Flask

PARIS = ZoneInfo("Europe/Paris")
MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
          "octobre", "novembre", "décembre")


def euros(value) -> str:
    if value is None:
        return "—"
    from instruction.rules.formatting import format_euros

    return format_euros(value)


def date_fr(value: date | datetime | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        value = value.astimezone(PARIS).date()
    return f"{value.day}{'er' if value.day == 1 else ''} {MONTHS[value.month - 1]} {value.year}"


def datetime_fr(value: datetime | None) -> str:
    if value is None:
        return "—"
    local = value.astimezone(PARIS)
    return f"{date_fr(local)} à {local:%H:%M}"


def number_fr(value: int | None) -> str:
    if value is None:
        return "—"
    return f"{value:,}".replace(",", "\u00a0")


def register_filters(app: Flask) -> None:
    app.add_template_filter(euros, "euros")
    app.add_template_filter(date_fr, "date_fr")
    app.add_template_filter(datetime_fr, "datetime_fr")
    app.add_template_filter(number_fr, "number_fr")
