"""Administration of campaigns: a new campaign from an existing one (its parameter set, new dates),
opening or closing early with a message to the applicants who have a draft, a later deadline for
one dossier, and the rule parameters in force, read-only and in plain French.

Operations write their audit event in the caller's transaction; views commit through ``perform``.
Parameter values change only through the parameter files (reviewed like code)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import select

from instruction.accounts.models import User
from instruction.accounts.services import _external_url, approved_agents_query
from instruction.admin import audit
from instruction.admin.people import _require_admin
from instruction.backoffice.envelope_figures import SCOPE_LABELS
from instruction.campaigns.models import Aid, Campaign
from instruction.campaigns.services import parameters_of
from instruction.dossiers import services as dossiers
from instruction.dossiers.models import CATEGORY_LABELS, Dossier
from instruction.errors import Refusal
from instruction.extensions import db
from instruction.notifications import services as notifications
from instruction.rules.formatting import (
    format_date_fr,
    format_euros,
    format_integer,
    format_percent,
)
from instruction.rules.parameters import PARIS, paris_date


class CampaignError(Refusal):
    """A campaign operation refused (400)."""


def paris_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=PARIS)


def last_day(deadline: datetime) -> date:
    return paris_date(deadline - timedelta(microseconds=1))


def _dates(campaign: Campaign) -> dict:
    return {"opens_at": campaign.opens_at.astimezone(UTC).isoformat(),
            "deadline_at": campaign.deadline_at.astimezone(UTC).isoformat()}


def _label(campaign: Campaign) -> str:
    return campaign.title


def create_from(actor: User, source: Campaign, *, code: str, title: str, reference_prefix: str,
                opens_on: date, last: date, now: datetime) -> Campaign:
    """A campaign applying ``source``'s parameter set (and aids) from ``opens_on`` to ``last`` inclusive."""
    _require_admin(actor)
    if db.session.scalar(select(Campaign).where(Campaign.code == code)) is not None:
        raise CampaignError(f"Une campagne a déjà le code « {code} ».")
    if last < opens_on:
        raise CampaignError("Le dernier jour de dépôt doit suivre le premier.")
    campaign = Campaign(code=code, title=title, reference_prefix=reference_prefix,
                        opens_at=paris_midnight(opens_on), deadline_at=paris_midnight(last + timedelta(days=1)),
                        parameters_code=source.parameters_code, dates_set_by_admin=True,
                        aids=[Aid(number=a.number, title=a.title) for a in source.aids])
    db.session.add(campaign)
    db.session.flush()
    audit.record(actor, "create_campaign", subject_kind="campaign", subject_id=campaign.id,
                 label=_label(campaign), now=now,
                 after={**_dates(campaign), "parameters": source.title, "campaign": code})
    return campaign


def _draft_holders(campaign: Campaign) -> tuple[list[User], list[str]]:
    drafts = db.session.scalars(select(Dossier).where(Dossier.campaign_id == campaign.id,
                                                      Dossier.state == "draft").order_by(Dossier.id)).all()
    users: dict[int, User] = {}
    for collectivite_id in sorted({d.collectivite_id for d in drafts}):
        for agent in db.session.scalars(approved_agents_query(collectivite_id)):
            users[agent.id] = agent
    return list(users.values()), [d.reference for d in drafts if d.reference]


def _change_dates(actor: User, campaign: Campaign, *, opens_at: datetime, deadline_at: datetime,
                  change: str, message: str, now: datetime) -> None:
    before = _dates(campaign)
    campaign.opens_at, campaign.deadline_at, campaign.dates_set_by_admin = opens_at, deadline_at, True
    db.session.flush()
    event = audit.record(actor, "change_campaign_dates", subject_kind="campaign", subject_id=campaign.id,
                         label=_label(campaign), now=now, before=before, after=_dates(campaign),
                         reason=message or change)
    db.session.flush()
    recipients, references = _draft_holders(campaign)
    still_open = now < deadline_at
    notifications.queue(
        "campaign_dates", key=f"campaign:{campaign.id}:dates:{event.id}", recipients=recipients,
        context={"campaign": campaign.title, "change": change, "message": message or None,
                 "drafts": references, "still_open": still_open,
                 "last_day": format_date_fr(last_day(deadline_at)),
                 "url": _external_url("portal.index")}, now=now)


def open_early(actor: User, campaign: Campaign, *, message: str, now: datetime) -> None:
    _require_admin(actor)
    if campaign.opens_at <= now:
        raise CampaignError("Cette campagne est déjà ouverte.")
    if campaign.deadline_at <= now:
        raise CampaignError("La date limite de cette campagne est passée.")
    _change_dates(actor, campaign, opens_at=now, deadline_at=campaign.deadline_at, now=now, message=message,
                  change=f"les dépôts sont ouverts dès le {format_date_fr(paris_date(now))}, jusqu'au "
                         f"{format_date_fr(last_day(campaign.deadline_at))} inclus.")


def close_early(actor: User, campaign: Campaign, *, message: str, now: datetime) -> None:
    _require_admin(actor)
    if campaign.opens_at > now:
        raise CampaignError("Cette campagne n'est pas encore ouverte.")
    if campaign.deadline_at <= now:
        raise CampaignError("Cette campagne est déjà close.")
    _change_dates(actor, campaign, opens_at=campaign.opens_at, deadline_at=now, now=now, message=message,
                  change=f"les dépôts sont clos dès le {format_date_fr(paris_date(now))}, avant la date "
                         f"prévue ({format_date_fr(last_day(campaign.deadline_at))}).")


def extend_deadline(actor: User, campaign: Campaign, *, reference: str, last: date, reason: str,
                    now: datetime) -> Dossier:
    """Let the dossier ``reference`` of this campaign, and only it, be submitted until ``last``."""
    _require_admin(actor)
    dossier = db.session.scalar(select(Dossier).where(Dossier.reference == reference.strip().upper(),
                                                      Dossier.campaign_id == campaign.id))
    if dossier is None:
        raise CampaignError(f"Aucun dossier de cette campagne n'a la référence « {reference.strip()} ».")
    dossiers.extend_deadline(dossier, actor, paris_midnight(last + timedelta(days=1)), reason, now=now)
    return dossier


def extended_dossiers(campaign: Campaign) -> list[Dossier]:
    return list(db.session.scalars(select(Dossier).where(Dossier.campaign_id == campaign.id,
                                                         Dossier.extended_deadline_at.is_not(None))
                                   .order_by(Dossier.extended_deadline_at.desc())))


# --- the rule parameters in force, in words ------------------------------------------------------

PARAMETER_LABELS = {
    "beneficiary_kinds": "Bénéficiaires",
    "population_basis": "Population prise en compte",
    "population_below": "Population strictement inférieure à",
    "ville_centre_only": "Réservée à la ville centre",
    "eligible_categories": "Dépenses éligibles",
    "cap_amount": "Plafond de l'aide",
    "rate": "Taux",
    "packs": "Forfaits",
    "licence_max_months": "Durée de licence prise en compte",
    "minimum_project_cost": "Coût minimal du projet",
    "programme_amount": "Enveloppe du programme",
}
KIND_WORDS = {"commune": "communes", "epci": "EPCI", "sivos": "SIVOS"}
BASIS_WORDS = {"applicant": "celle du demandeur", "epci": "celle de l'EPCI"}


def describe_value(name: str, value) -> str:
    if name == "beneficiary_kinds":
        return ", ".join(KIND_WORDS.get(k, k) for k in value)
    if name == "population_basis":
        return BASIS_WORDS.get(value, value)
    if name == "population_below":
        return f"{format_integer(value)} habitants"
    if name == "eligible_categories":
        return ", ".join(CATEGORY_LABELS.get(c, c).lower() for c in value)
    if name in ("cap_amount", "minimum_project_cost", "programme_amount"):
        return f"{format_euros(Decimal(value))} HT"
    if name == "rate":
        return f"{format_percent(Decimal(value))} des dépenses éligibles HT"
    if name == "packs":
        return " ; ".join(f"{p.label} : {format_euros(p.amount)}" for p in value)
    if name == "licence_max_months":
        return f"{value} mois au plus"
    if isinstance(value, bool):
        return "oui" if value else "non"
    return str(value)


@dataclass(frozen=True)
class ParameterRow:
    label: str
    value: str
    since: str
    reference: str
    in_force: bool  # the value in force on the day asked


@dataclass(frozen=True)
class AidRulesView:
    number: int
    title: str
    scope: str
    rows: list[ParameterRow]


def parameters_view(campaign: Campaign, day: date) -> tuple[str, list[AidRulesView]]:
    """The campaign's legal reference and, per aid, each dated value (in force on ``day`` flagged)."""
    params = parameters_of(campaign)
    aids = []
    for number, aid in sorted(params.aids.items()):
        rows = []
        for name, parameter in aid.dated.items():
            current = next((e for e in reversed(parameter.values) if e.start <= day), None)
            for entry in parameter.values:
                rows.append(ParameterRow(PARAMETER_LABELS.get(name, name), describe_value(name, entry.value),
                                         format_date_fr(entry.start), entry.reference, entry is current))
        aids.append(AidRulesView(number, aid.title, SCOPE_LABELS.get(aid.cap_scope, aid.cap_scope), rows))
    return params.reference, aids
