"""The dashboard, ``/tableau-de-bord``: staff only (an applicant gets 404, an anonymous visitor
the login page). Filters: the campaign (default: the current one) and the département; the
figures are those of the queue's export with the same filters (``dashboard``)."""

from __future__ import annotations

from decimal import Decimal

from flask import Blueprint, render_template, request
from flask_login import current_user
from sqlalchemy import select

from instruction import clock
from instruction.backoffice import charts, dashboard, queries
from instruction.campaigns.models import Campaign
from instruction.campaigns.services import current_campaign
from instruction.dossiers.models import STATE_LABELS
from instruction.extensions import db
from instruction.rules.formatting import format_euros, format_integer, format_percent
from instruction.web.access import staff_only

bp = Blueprint("dashboard", __name__)


bp.before_request(staff_only(404))


def decimal_fr(value: Decimal | None) -> str:
    return "—" if value is None else f"{value:f}".replace(".", ",")


def percent(value: Decimal | None) -> str:
    return "—" if value is None else format_percent(value)


def _charts(board: dashboard.Dashboard) -> dict[str, charts.BarChart]:
    amounts = [(f"Aide {a.aid}", (a.requested, a.granted, a.paid)) for a in board.aids]
    return {
        "aids": charts.bar_chart("Montants demandés, attribués et versés par aide",
                                 ("Demandé", "Attribué", "Versé"), amounts, format_euros),
        "programme": charts.bar_chart(
            "Part de l'enveloppe du programme engagée, par aide", ("Part engagée",),
            [(f"Aide {a.aid}", ((a.share_used or Decimal(0)) * 100,)) for a in board.aids],
            lambda v: format_percent(Decimal(v) / 100)),
        "closest": charts.bar_chart(
            "EPCI les plus proches de leur plafond", ("Part du plafond engagée",),
            [(f"{c.epci_name} · aide {c.aid}", ((c.share or Decimal(0)) * 100,)) for c in board.closest],
            lambda v: format_percent(Decimal(v) / 100)),
        "states": charts.bar_chart("Dossiers par état", ("Dossiers",),
                                   [(STATE_LABELS[s], (n,)) for s, n in board.states], format_integer),
        "departements": charts.bar_chart(
            "Dossiers par département", ("Dossiers",),
            [(f"{d.code} · {d.name}" if d.code else d.name, (d.count,)) for d in board.departements],
            format_integer),
        "backlog": charts.bar_chart("Dossiers en cours par instructeur", ("À instruire", "Pièces demandées"),
                                    [(b.name, (b.to_instruct, b.waiting)) for b in board.backlog], format_integer),
    }


@bp.route("/tableau-de-bord")
def index():
    options = queries.FilterOptions.load()
    warnings = []
    code = (request.args.get("campagne") or "").replace("\x00", "").strip()
    campaign = None
    if code:
        campaign = next((c for c in _campaigns() if c.code == code), None)
        if campaign is None:
            warnings.append(f"Campagne « {code[:40]} » inconnue : campagne en cours affichée.")
    campaign = campaign or current_campaign()
    if campaign is None:
        return render_template("backoffice/dashboard.html", board=None, warnings=warnings, options=options)
    args = {"onglet": "tous", "campagne": campaign.code, "departement": request.args.get("departement", "")}
    f = queries.parse_filters(args, options, role=current_user.role, user_id=current_user.id)
    board = dashboard.dashboard(f, campaign, clock.now())
    return render_template(
        "backoffice/dashboard.html", board=board, charts=_charts(board), options=options,
        warnings=[*warnings, *f.warnings], campaigns=_campaigns(),
        export_args=f.to_args(page=1), decimal_fr=decimal_fr, percent=percent, STATE_LABELS=STATE_LABELS)


def _campaigns() -> list[Campaign]:
    return list(db.session.scalars(select(Campaign).order_by(Campaign.deadline_at.desc(), Campaign.id.desc())))
