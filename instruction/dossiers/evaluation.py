"""Bridge between the database and the pure rule module: build its inputs, read its decision."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select

from instruction import rules
from instruction.campaigns.services import parameters_of
from instruction.dossiers import envelopes
from instruction.dossiers.models import Dossier, Envelope, PackGrant
from instruction.dossiers.workflow import deadline_of
from instruction.extensions import db
from instruction.territory.models import Collectivite


def applicant_for(collectivite: Collectivite, population: int | None = None) -> rules.Applicant:
    """The rule module's view of a collectivité; ``population`` overrides it (frozen on a dossier)."""
    if population is None:
        population = collectivite.population
    if collectivite.kind == "epci":
        return rules.Applicant(kind="epci", id=collectivite.code, name=collectivite.name,
                               population=population)
    epci = collectivite.epci
    return rules.Applicant(
        kind=collectivite.kind,
        id=collectivite.code,
        name=collectivite.name,
        population=population,
        epci_siren=epci.siren if epci else None,
        epci_name=epci.name if epci else None,
        epci_population=epci.population if epci else None,
        is_ville_centre=bool(epci and epci.ville_centre_id == collectivite.id),
    )


def expense_lines(dossier: Dossier) -> list[rules.ExpenseLine]:
    return [rules.ExpenseLine(category=line.category, amount_ht=line.amount_ht, label=line.label,
                              pack=line.pack, months=line.months) for line in dossier.lines]


def parameters(dossier: Dossier) -> rules.CampaignParameters:
    """The campaign's parameters with the dates that apply to this dossier: the campaign's, or
    the later deadline an admin granted it (``workflow.deadline_of``)."""
    params = parameters_of(dossier.campaign)
    deadline = deadline_of(dossier)
    return params if deadline == params.deadline else replace(params, deadline=deadline)


def scope_of(dossier: Dossier) -> str | None:
    """The dossier's cap scope, or None when it cannot be determined (no EPCI)."""
    try:
        return rules.cap_scope(applicant_for(dossier.collectivite), dossier.aid_number, parameters(dossier))
    except ValueError:
        return None


def envelope_consumed(campaign_id: int, aid_number: int, scope: str | None) -> Decimal:
    if scope is None:
        return Decimal("0.00")
    consumed = db.session.scalar(select(Envelope.consumed).where(
        Envelope.campaign_id == campaign_id, Envelope.aid_number == aid_number, Envelope.scope == scope))
    return consumed if consumed is not None else Decimal("0.00")


def packs_granted(campaign_id: int, collectivite_id: int) -> frozenset[int]:
    return frozenset(db.session.scalars(select(PackGrant.pack).where(
        PackGrant.campaign_id == campaign_id, PackGrant.collectivite_id == collectivite_id)))


def evaluate_dossier(dossier: Dossier, at: datetime,
                     extra_lines: tuple[rules.ExpenseLine, ...] = ()) -> rules.Decision:
    """Evaluate the dossier as if submitted at ``at`` (its submission instant once submitted),
    against what its envelope has committed and the envelope's cap in force at ``at``;
    ``extra_lines`` are lines not saved yet (the applicant's live estimate)."""
    scope = scope_of(dossier)
    consumption = rules.Consumption(
        consumed=envelope_consumed(dossier.campaign_id, dossier.aid_number, scope),
        packs_granted=packs_granted(dossier.campaign_id, dossier.collectivite_id)
        if dossier.aid_number == 1 else frozenset(),
        cap_limit=envelopes.cap_limit(dossier.campaign, dossier.aid_number, at),
    )
    applicant = applicant_for(dossier.collectivite, dossier.population)
    return rules.evaluate(applicant, dossier.aid_number, [*expense_lines(dossier), *extra_lines],
                          dossier.submitted_at or at, parameters(dossier), consumption)
