"""The figures of the dashboard (``/tableau-de-bord``), for one campaign and optionally one
département.

Every figure is an aggregate of the rows the queue's export lists for the same filters: each query
starts from ``queries.columns_select`` (the export's own statement builder, tab "Tous") with its
order dropped, so the dashboard's sums are the export's sums by construction (a test checks it).
Everything is summed, counted and ranked by the database (``GROUP BY``, ``ORDER BY ... OFFSET``): a
handful of queries whatever the number of dossiers, no Python loop over dossiers.

Processing time is the time elapsed from the submission to the decision (grant, refusal or
ineligibility), in hours (instants are stored in UTC, so a change of summer time in Paris neither
adds nor removes an hour); the page also shows it in days of 24 hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import Float, Select, case, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement

from instruction.backoffice.queries import Assignee, QueueFilters, columns_select
from instruction.campaigns.models import Campaign
from instruction.campaigns.services import parameters_of
from instruction.dossiers.models import STATES, Dossier
from instruction.dossiers.workflow import CLOSED_STATES, CONSUMING_STATES, PENDING_STATES
from instruction.extensions import db
from instruction.territory.models import Collectivite, Departement, Epci

ZERO = Decimal("0.00")
CENT = Decimal("0.01")
TENTH = Decimal("0.1")  # hours and days are shown with one decimal, rounded half up
CLOSEST = 10  # EPCI envelopes listed, closest to their cap first
BALANCE_PAID = tuple(s for s in CONSUMING_STATES if s in CLOSED_STATES)
# What a dossier consumes of its envelope: the paid amount once the balance is paid, else its grant.
COMMITTED = case((Dossier.state.in_(BALANCE_PAID), func.coalesce(Dossier.paid_amount, 0)),
                 (Dossier.state.in_(CONSUMING_STATES), func.coalesce(Dossier.granted_amount, 0)), else_=0)


def _euros(value) -> Decimal:
    return Decimal(str(value or 0)).quantize(CENT)


def _share(part: Decimal, whole: Decimal | None) -> Decimal | None:
    """``part / whole`` as a fraction with 4 places (0.1234 = 12,34 %); None without a whole."""
    if not whole:
        return None
    return (part / whole).quantize(Decimal("0.0001"))


class ElapsedHours(ColumnElement):
    """Hours elapsed from ``start`` to ``end`` (two UTC instants), as a float."""

    type = Float()
    inherit_cache = False

    def __init__(self, start, end):
        self.start, self.end = start, end


@compiles(ElapsedHours)
def _elapsed_hours_sqlite(element, compiler, **kw):
    start, end = compiler.process(element.start, **kw), compiler.process(element.end, **kw)
    return f"((julianday({end}) - julianday({start})) * 24.0)"


@compiles(ElapsedHours, "postgresql")
def _elapsed_hours_postgresql(element, compiler, **kw):
    start, end = compiler.process(element.start, **kw), compiler.process(element.end, **kw)
    return f"(EXTRACT(EPOCH FROM ({end} - {start})) / 3600.0)"


# --- the figures ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AidFigures:
    aid: int
    title: str
    count: int
    requested: Decimal
    granted: Decimal
    paid: Decimal
    committed: Decimal  # what the envelopes of the aid hold (grants, paid balances)
    programme_amount: Decimal | None  # the programme's envelope for the aid (a rule parameter)

    @property
    def share_used(self) -> Decimal | None:
        return _share(self.committed, self.programme_amount)


@dataclass(frozen=True)
class CapFigures:
    """An EPCI envelope (aid × scope) and how close it is to its cap."""

    aid: int
    scope: str
    epci_siren: str
    epci_name: str
    cap: Decimal
    committed: Decimal
    pending: Decimal

    @property
    def share(self) -> Decimal | None:
        return _share(self.committed, self.cap)

    @property
    def remaining(self) -> Decimal:
        return max(self.cap - self.committed, ZERO)


@dataclass(frozen=True)
class DepartementFigures:
    code: str
    name: str
    count: int
    requested: Decimal
    granted: Decimal
    paid: Decimal


@dataclass(frozen=True)
class ProcessingTime:
    decided: int  # dossiers decided (with a submission and a decision instant)
    median_hours: Decimal | None
    p90_hours: Decimal | None

    @staticmethod
    def days(hours: Decimal | None) -> Decimal | None:
        return None if hours is None else (hours / 24).quantize(TENTH, ROUND_HALF_UP)


@dataclass(frozen=True)
class Backlog:
    instructor_id: int | None  # None: the dossiers nobody has taken
    name: str
    to_instruct: int  # received or eligible: the instructor's move
    waiting: int  # documents requested: the applicant's move
    oldest_submitted_at: datetime | None

    @property
    def total(self) -> int:
        return self.to_instruct + self.waiting


@dataclass(frozen=True)
class Dashboard:
    campaign: Campaign
    filters: QueueFilters
    aids: list[AidFigures]
    closest: list[CapFigures]
    states: list[tuple[str, int]]  # (state, count), lifecycle order, states with dossiers
    departements: list[DepartementFigures]
    processing: ProcessingTime
    backlog: list[Backlog]

    @property
    def total(self) -> AidFigures:
        programmes = [a.programme_amount for a in self.aids]
        programme = sum((p for p in programmes if p is not None), ZERO) \
            if programmes and None not in programmes else None
        return AidFigures(
            aid=0, title="Total", count=sum(a.count for a in self.aids),
            requested=sum((a.requested for a in self.aids), ZERO),
            granted=sum((a.granted for a in self.aids), ZERO),
            paid=sum((a.paid for a in self.aids), ZERO),
            committed=sum((a.committed for a in self.aids), ZERO),
            programme_amount=programme)


def _grouped(f: QueueFilters, *columns) -> Select:
    """The export's statement for these filters, for aggregates (its row order dropped)."""
    return columns_select(f, *columns).order_by(None)


@dataclass(frozen=True)
class Cell:
    """The dossiers of one aid, state and département: their count and sums."""

    aid: int
    state: str
    departement: str | None
    count: int
    requested: Decimal
    granted: Decimal
    paid: Decimal
    committed: Decimal


def breakdown(f: QueueFilters) -> list[Cell]:
    """The filtered dossiers counted and summed per aid × state × département, in ONE grouped
    query (at most 5 × 9 × a few départements rows): the figures per aid, per state and per
    département are added up from these cells, never from the dossiers."""
    rows = db.session.execute(
        _grouped(f, Dossier.aid_number, Dossier.state, Collectivite.departement_code, func.count(),
                 func.coalesce(func.sum(Dossier.requested_amount), 0),
                 func.coalesce(func.sum(Dossier.granted_amount), 0),
                 func.coalesce(func.sum(Dossier.paid_amount), 0), func.coalesce(func.sum(COMMITTED), 0))
        .group_by(Dossier.aid_number, Dossier.state, Collectivite.departement_code)).all()
    return [Cell(aid, state, departement, count, _euros(requested), _euros(granted), _euros(paid), _euros(committed))
            for aid, state, departement, count, requested, granted, paid, committed in rows]


def _added(cells: list[Cell]) -> tuple[int, Decimal, Decimal, Decimal, Decimal]:
    return (sum(c.count for c in cells), sum((c.requested for c in cells), ZERO),
            sum((c.granted for c in cells), ZERO), sum((c.paid for c in cells), ZERO),
            sum((c.committed for c in cells), ZERO))


def aid_figures(cells: list[Cell], campaign: Campaign, now: datetime) -> list[AidFigures]:
    params = parameters_of(campaign)
    instant = _within(campaign, now)
    result = []
    for number, aid in sorted(params.aids.items()):
        count, requested, granted, paid, committed = _added([c for c in cells if c.aid == number])
        result.append(AidFigures(aid=number, title=aid.title, count=count, requested=requested,
                                 granted=granted, paid=paid, committed=committed,
                                 programme_amount=params.rules(number, instant).programme_amount))
    return result


def _within(campaign: Campaign, now: datetime) -> datetime:
    """The rules of a campaign are read at ``now`` clamped to its window (as the caps are)."""
    params = parameters_of(campaign)
    return min(max(now, params.opens_at), params.deadline - timedelta(microseconds=1))


def closest_to_cap(f: QueueFilters, campaign: Campaign, now: datetime, limit: int = CLOSEST) -> list[CapFigures]:
    """The EPCI envelopes (aids whose cap is not per commune) with the largest share of their cap
    committed, among the filtered dossiers. One grouped query (one row per aid × scope: a few
    hundred at most), ranked here, then the names of the EPCI listed."""
    params = parameters_of(campaign)
    instant = _within(campaign, now)
    epci_aids = [n for n, aid in params.aids.items() if aid.cap_scope != "commune"]
    caps = {n: params.rules(n, instant).cap_amount for n in epci_aids}
    pending = case((Dossier.state.in_(PENDING_STATES),
                    func.coalesce(Dossier.computed_amount, Dossier.requested_amount, 0)), else_=0)
    rows = db.session.execute(
        _grouped(f, Dossier.aid_number, Dossier.cap_scope, func.coalesce(func.sum(COMMITTED), 0),
                 func.coalesce(func.sum(pending), 0))
        .where(Dossier.aid_number.in_(epci_aids), Dossier.cap_scope.is_not(None),
               Dossier.state.in_(PENDING_STATES + CONSUMING_STATES))
        .group_by(Dossier.aid_number, Dossier.cap_scope)).all()
    ranked = sorted(((aid, scope, _euros(committed), _euros(waiting)) for aid, scope, committed, waiting in rows),
                    key=lambda r: (-(r[2] / caps[r[0]]) if caps[r[0]] else 0, -r[3], r[0], r[1]))[:limit]
    sirens = {scope.split(":", 1)[-1] for _, scope, _, _ in ranked}
    names = dict(db.session.execute(select(Epci.siren, Epci.name).where(Epci.siren.in_(sirens))).all()) \
        if sirens else {}
    return [CapFigures(aid=aid, scope=scope, epci_siren=scope.split(":", 1)[-1],
                       epci_name=names.get(scope.split(":", 1)[-1], scope), cap=caps[aid],
                       committed=committed, pending=waiting)
            for aid, scope, committed, waiting in ranked]


def state_counts(cells: list[Cell]) -> list[tuple[str, int]]:
    counts = {state: sum(c.count for c in cells if c.state == state) for state in STATES}
    return [(state, count) for state, count in counts.items() if count]


def departement_figures(cells: list[Cell]) -> list[DepartementFigures]:
    names = dict(db.session.execute(select(Departement.code, Departement.name)).all())
    result = []
    for code in sorted({c.departement for c in cells}, key=lambda code: (code is None, code or "")):
        count, requested, granted, paid, _ = _added([c for c in cells if c.departement == code])
        result.append(DepartementFigures(code=code or "", name=names.get(code, "Sans département") if code
                                         else "Sans département", count=count, requested=requested,
                                         granted=granted, paid=paid))
    return result


def processing_time(f: QueueFilters) -> ProcessingTime:
    """Median and 90th percentile of the hours from submission to decision. The median of an even
    number of values is the mean of the two middle ones; the 90th percentile is the nearest rank
    (the smallest value with at least 90 % of the values at or below it). One query: the database
    ranks the decided dossiers by their time (window functions) and returns the two or three rows
    at the ranks asked."""
    hours = ElapsedHours(Dossier.submitted_at, Dossier.decided_at)
    ranked = (_grouped(f, hours.label("hours"),
                       func.row_number().over(order_by=(hours, Dossier.id)).label("rank"),
                       func.count().over().label("n"))
              .where(Dossier.decided_at.is_not(None), Dossier.submitted_at.is_not(None)).subquery())
    n = ranked.c.n
    # 1-based ranks, integer division: the middle one or two, and ceil(0.9 n) = (9 n + 9) / 10
    picked = db.session.execute(select(ranked.c.rank, ranked.c.n, ranked.c.hours).where(
        ranked.c.rank.in_([(n + 1) // 2, n // 2 + 1, (n * 9 + 9) // 10]))).all()
    if not picked:
        return ProcessingTime(decided=0, median_hours=None, p90_hours=None)
    count = picked[0].n
    at = {row.rank: Decimal(str(row.hours)) for row in picked}
    median = (at[(count + 1) // 2] + at[count // 2 + 1]) / 2
    p90 = at[(count * 9 + 9) // 10]
    return ProcessingTime(decided=count, median_hours=median.quantize(TENTH, ROUND_HALF_UP),
                          p90_hours=p90.quantize(TENTH, ROUND_HALF_UP))


def backlog(f: QueueFilters) -> list[Backlog]:
    """Open dossiers (received, incomplete, eligible) per assigned instructor, and those nobody
    has taken; the largest backlog first."""
    waiting = Dossier.state == "incomplete"
    rows = db.session.execute(
        _grouped(f, Assignee.id, Assignee.full_name, func.count(case((~waiting, 1))),
                 func.count(case((waiting, 1))), func.min(Dossier.submitted_at))
        .where(Dossier.state.in_(PENDING_STATES))
        .group_by(Assignee.id, Assignee.full_name)).all()
    result = [Backlog(instructor_id=id_, name=name if id_ is not None else "Non attribués",
                      to_instruct=to_instruct, waiting=incomplete, oldest_submitted_at=oldest)
              for id_, name, to_instruct, incomplete, oldest in rows]
    return sorted(result, key=lambda b: (b.instructor_id is None, -b.total, b.name))


def dashboard(f: QueueFilters, campaign: Campaign, now: datetime) -> Dashboard:
    cells = breakdown(f)
    return Dashboard(campaign=campaign, filters=f, aids=aid_figures(cells, campaign, now),
                     closest=closest_to_cap(f, campaign, now), states=state_counts(cells),
                     departements=departement_figures(cells), processing=processing_time(f), backlog=backlog(f))
