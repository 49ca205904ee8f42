"""Public routes of the legal pages (anonymous visitors and every role get them)."""

from __future__ import annotations

from flask import Blueprint, render_template

from instruction.legal import texts
from instruction.legal.markup import render
from instruction.settings.services import LEGAL_TEXT_LABELS, current_identity, legal_texts

bp = Blueprint("legal", __name__)

DEFAULTS = {
    "legal_notice": texts.legal_notice,
    "privacy_notice": texts.privacy_notice,
    "accessibility_statement": texts.accessibility_statement,
}


def _page(name: str, **extra):
    """The admin's text of the page when written, else the default built from the identity."""
    written = legal_texts()[name].strip()
    body = written or DEFAULTS[name](current_identity())
    return render_template("legal/page.html", title=LEGAL_TEXT_LABELS[name], name=name,
                           body=render(body), written=bool(written), **extra)


@bp.route("/mentions-legales")
def legal_notice():
    return _page("legal_notice")


@bp.route("/donnees-personnelles")
def privacy_notice():
    return _page("privacy_notice", retention=texts.retention_periods())


@bp.route("/accessibilite")
def accessibility_statement():
    return _page("accessibility_statement")
