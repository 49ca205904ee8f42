"""Read-only figures of envelopes (aid × cap scope within a campaign) for the back-office pages.

What consumes a cap is kept by ``instruction.dossiers.envelopes`` (the ``Envelope`` rows, written
only by the services). Here we add what DESIGN §2 shows beside it: the pending demand of dossiers
received, incomplete or eligible (their computed amount, else their requested amount), which does
not block anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import case, func, select
from sqlalchemy.orm import defer, joinedload

from instruction.campaigns.models import Campaign
from instruction.campaigns.services import parameters_of
from instruction.dossiers.envelopes import cap_limit
from instruction.dossiers.models import Dossier, Envelope
from instruction.dossiers.workflow import CONSUMING_STATES, PENDING_STATES
from instruction.extensions import db
from instruction.territory.models import Collectivite, Commune, Epci

ZERO = Decimal("0.00")
SCOPE_LABELS = {
    "commune": "par commune, tous ses dossiers ensemble",
    "epci": "par EPCI, tous ses dossiers ensemble",
    "epci-territoire": "à l'échelle de l'EPCI, de ses communes et de ses SIVOS",
    "epci-ville-centre": "pour l'EPCI et sa ville centre ensemble",
}


def _cents(value) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def demand_of(dossier: Dossier) -> Decimal:
    """What a pending dossier asks of its envelope: its computed amount once declared eligible."""
    return dossier.computed_amount if dossier.computed_amount is not None \
        else (dossier.requested_amount or ZERO)


@dataclass(frozen=True)
class EnvelopeFigures:
    scope: str
    limit: Decimal
    consumed: Decimal
    pending: Decimal  # demand of the pending dossiers counted
    pending_count: int
    paid: Decimal = ZERO  # paid to the granted and paid dossiers of the scope (part of consumed)

    @property
    def remaining(self) -> Decimal:
        return max(self.limit - self.consumed, ZERO)

    @property
    def over_cap(self) -> bool:
        """The cap was lowered below what is already committed: shown, and no grant passes."""
        return self.consumed > self.limit

    @property
    def scope_label(self) -> str:
        return SCOPE_LABELS.get(self.scope.split(":", 1)[0], self.scope)

    @property
    def remaining_after_pending(self) -> Decimal:
        return self.remaining - self.pending


def for_dossier(dossier: Dossier, now: datetime) -> EnvelopeFigures | None:
    """The envelope of the dossier's cap scope, the pending demand of the OTHER dossiers of that
    scope (same campaign and aid). None when the dossier has no scope (never submitted)."""
    if not dossier.cap_scope:
        return None
    envelope = db.session.scalar(select(Envelope).where(
        Envelope.campaign_id == dossier.campaign_id, Envelope.aid_number == dossier.aid_number,
        Envelope.scope == dossier.cap_scope))
    pending, count = db.session.execute(
        select(func.coalesce(func.sum(func.coalesce(Dossier.computed_amount, Dossier.requested_amount)), 0),
               func.count())
        .where(Dossier.campaign_id == dossier.campaign_id, Dossier.aid_number == dossier.aid_number,
               Dossier.cap_scope == dossier.cap_scope, Dossier.state.in_(PENDING_STATES),
               Dossier.id != dossier.id)).one()
    limit = cap_limit(dossier.campaign, dossier.aid_number, now)
    consumed = envelope.consumed if envelope is not None else ZERO
    return EnvelopeFigures(scope=dossier.cap_scope, limit=limit, consumed=consumed,
                           pending=Decimal(pending).quantize(Decimal("0.01")), pending_count=count)


# --- the envelope view of an EPCI --------------------------------------------------------------


LISTED_PER_SCOPE = 20  # dossiers listed under each envelope; the queue lists them all


@dataclass
class ScopeEnvelope:
    scope: str
    label: str
    figures: EnvelopeFigures
    dossiers: list[Dossier] = field(default_factory=list)  # the most recent LISTED_PER_SCOPE
    dossier_count: int = 0  # pending, granted or paid dossiers counting for the envelope

    @property
    def unlisted(self) -> int:
        return self.dossier_count - len(self.dossiers)


@dataclass
class AidEnvelopes:
    aid: int
    title: str
    scope_kind: str
    scope_label: str
    cap_amount: Decimal
    envelopes: list[ScopeEnvelope]
    idle_communes: int = 0  # aid 1: communes of the EPCI with no dossier nor envelope


def _territory(epci: Epci, campaign: Campaign):
    """The ids of the dossiers of the EPCI's territory that count for an envelope of the campaign
    (pending demand, granted or paid)."""
    return (select(Dossier.id).join(Collectivite, Dossier.collectivite_id == Collectivite.id)
            .where(Collectivite.epci_id == epci.id, Dossier.campaign_id == campaign.id,
                   Dossier.state.in_(PENDING_STATES + CONSUMING_STATES),
                   Dossier.cap_scope.is_not(None)))


def for_epci(epci: Epci, campaign: Campaign, now: datetime) -> list[AidEnvelopes]:
    """Every aid of the campaign with the envelopes of the EPCI's territory (per commune for a
    commune-scoped aid), their pending demand, and the most recent dossiers of each.

    Four queries whatever the size of the territory: its communes, the pending demand and the
    dossier count of each scope (summed by the database), the most recent dossiers of each scope
    (ranked by the database), the envelopes.
    """
    params = parameters_of(campaign)
    communes = dict(db.session.execute(
        select(Commune.insee, Commune.name).where(Commune.epci_id == epci.id)).all())
    territory = _territory(epci, campaign)
    is_pending = Dossier.state.in_(PENDING_STATES)
    totals = {(aid, scope): (_cents(pending), pending_count, count, _cents(paid))
              for aid, scope, pending, pending_count, count, paid in db.session.execute(
        select(Dossier.aid_number, Dossier.cap_scope,
               func.coalesce(func.sum(case((is_pending, func.coalesce(
                   Dossier.computed_amount, Dossier.requested_amount)))), 0),
               func.count(case((is_pending, 1))), func.count(),
               func.coalesce(func.sum(Dossier.paid_amount), 0))
        .where(Dossier.id.in_(territory)).group_by(Dossier.aid_number, Dossier.cap_scope))}
    rank = func.row_number().over(partition_by=(Dossier.aid_number, Dossier.cap_scope),
                                  order_by=(Dossier.submitted_at.desc(), Dossier.id.desc())).label("rank")
    ranked = select(Dossier.id, rank).where(Dossier.id.in_(territory)).subquery()
    recent = db.session.scalars(
        select(Dossier).join(ranked, ranked.c.id == Dossier.id).where(ranked.c.rank <= LISTED_PER_SCOPE)
        .options(joinedload(Dossier.collectivite), defer(Dossier.evaluation))
        .order_by(Dossier.aid_number, Dossier.submitted_at.desc(), Dossier.id.desc())).all()
    epci_scopes = {n: f"{aid.cap_scope}:{epci.siren}" for n, aid in params.aids.items()
                   if aid.cap_scope != "commune"}
    commune_scopes = [f"commune:{insee}" for insee in communes]
    envelopes = {(e.aid_number, e.scope): e for e in db.session.scalars(select(Envelope).where(
        Envelope.campaign_id == campaign.id,
        Envelope.scope.in_([*set(epci_scopes.values()), *commune_scopes])))}

    by_scope: dict[tuple[int, str | None], list[Dossier]] = {}
    for dossier in recent:
        by_scope.setdefault((dossier.aid_number, dossier.cap_scope), []).append(dossier)

    result = []
    for number, aid in sorted(params.aids.items()):
        limit = cap_limit(campaign, number, now)
        if aid.cap_scope == "commune":
            scopes = sorted({s for (n, s) in [*totals, *envelopes] if n == number and s.startswith("commune:")},
                            key=lambda s: communes.get(s.split(":", 1)[1], s))
        else:
            scopes = [epci_scopes[number]]
        envelopes_of_aid = []
        for scope in scopes:
            envelope = envelopes.get((number, scope))
            pending, pending_count, count, paid = totals.get((number, scope), (ZERO, 0, 0, ZERO))
            figures = EnvelopeFigures(
                scope=scope,
                limit=limit,
                consumed=envelope.consumed if envelope else ZERO,
                pending=pending,
                pending_count=pending_count,
                paid=paid,
            )
            if aid.cap_scope == "commune":
                insee = scope.split(":", 1)[1]
                label = f"Commune de {communes.get(insee, insee)} ({insee})"
            else:
                label = epci.name
            envelopes_of_aid.append(ScopeEnvelope(scope=scope, label=label, figures=figures,
                                                  dossiers=by_scope.get((number, scope), []),
                                                  dossier_count=count))
        idle = len(communes) - len(scopes) if aid.cap_scope == "commune" else 0
        result.append(AidEnvelopes(aid=number, title=aid.title, scope_kind=aid.cap_scope,
                                   scope_label=SCOPE_LABELS[aid.cap_scope], cap_amount=limit,
                                   envelopes=envelopes_of_aid, idle_communes=idle))
    return result


class CountingDossier(NamedTuple):
    """One dossier that counts for an envelope of the EPCI, as the statement lists it."""

    aid: int
    scope: str
    reference: str
    applicant: str
    kind: str
    state: str
    submitted_at: datetime | None
    requested: Decimal | None
    computed: Decimal | None
    granted: Decimal | None
    paid: Decimal | None


def counting_dossiers(epci: Epci, campaign: Campaign, batch: int = 1000) -> Iterator[CountingDossier]:
    """Every dossier counting for an envelope of the EPCI (all of them, not only the most recent),
    by aid, scope and most recent submission first; read ``batch`` rows at a time."""
    statement = (
        select(Dossier.aid_number, Dossier.cap_scope, Dossier.reference, Collectivite.name,
               Collectivite.kind, Dossier.state, Dossier.submitted_at, Dossier.requested_amount,
               Dossier.computed_amount, Dossier.granted_amount, Dossier.paid_amount)
        .join(Collectivite, Dossier.collectivite_id == Collectivite.id)
        .where(Dossier.id.in_(_territory(epci, campaign)))
        .order_by(Dossier.aid_number, Dossier.cap_scope, Dossier.submitted_at.desc(), Dossier.id.desc())
        .execution_options(yield_per=batch))
    for row in db.session.execute(statement):
        yield CountingDossier._make(row)  # the columns in field order (scope, reference: set)
