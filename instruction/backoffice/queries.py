"""The instruction queue: filters parsed from the URL, turned into ``select()`` statements.

Everything the queue shows is described by ``QueueFilters`` (parsed from ``request.args``, so a
view can be bookmarked) and built here: the rows of one page with what they display eager-loaded,
the counts of every tab in ONE query, and the neighbours of a dossier within the same filtered and
sorted list (for previous / next on the dossier page). A bad value in the URL is ignored with a
French warning: the queue never answers 400 or 500 for it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Select,
    SQLColumnExpression,
    and_,
    case,
    column,
    exists,
    func,
    or_,
    select,
    table,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased, contains_eager, defer
from sqlalchemy.sql.util import find_tables

from instruction.accounts.models import User
from instruction.campaigns.models import Aid, Campaign
from instruction.dossiers.models import STATE_LABELS, STATES, Dossier
from instruction.dossiers.workflow import (
    ASSIGNABLE_ROLES,
    CLOSED_STATES,
    CONSUMING_STATES,
    PENDING_STATES,
    VISIBLE_STATES,
)
from instruction.extensions import db
from instruction.rules.parameters import PARIS
from instruction.teamwork.models import DossierLabel, Label
from instruction.teamwork.services import changed_condition
from instruction.territory.models import (
    COLLECTIVITE_KINDS,
    KIND_LABELS,
    Collectivite,
    Departement,
    Epci,
)
from instruction.territory.names import fold
from instruction.web.numbers import bounded_int

PER_PAGE = 50
MAX_SEARCH = 100


@dataclass(frozen=True)
class Tab:
    key: str
    label: str
    states: tuple[str, ...] = VISIBLE_STATES
    mine: bool = False  # only the dossiers assigned to the current user
    money: bool = False  # finance's tabs: granted, paid and left to pay, with totals
    awaiting_payment: bool = False  # only the dossiers with a payment request sent to finance


TABS: dict[str, Tab] = {t.key: t for t in (
    Tab("a-instruire", "À instruire", PENDING_STATES),
    Tab("decides", "Décidés", tuple(s for s in CONSUMING_STATES if s not in CLOSED_STATES), money=True),
    Tab("demandes-versement", "Demandes de versement à traiter",
        tuple(s for s in CONSUMING_STATES if s not in CLOSED_STATES), money=True, awaiting_payment=True),
    Tab("verses", "Versés", tuple(s for s in CONSUMING_STATES if s in CLOSED_STATES), money=True),
    Tab("clos", "Clos", tuple(s for s in CLOSED_STATES if s not in CONSUMING_STATES)),
    Tab("tous", "Tous"),
    Tab("mes-dossiers", "Mes dossiers", mine=True),
)}

Assignee = aliased(User, name="assignee")
# The payment requests (``instruction.payment_requests``, which imports this package): their table only.
_REQUESTS = table("payment_request", column("dossier_id"), column("status"))
# Granted and not yet paid; nothing is left once the balance is paid (the rest went back to the envelope).
LEFT_TO_PAY = case((Dossier.state.in_(tuple(s for s in CONSUMING_STATES if s not in CLOSED_STATES)),
                    Dossier.granted_amount - func.coalesce(Dossier.paid_amount, 0)), else_=0)
_STATE_ORDER = case({state: index for index, state in enumerate(STATES)}, value=Dossier.state)
# Sort key in the URL -> (column header, SQL expression). Whitelisted: nothing else is accepted.
SORTS: dict[str, tuple[str, SQLColumnExpression[Any]]] = {
    "reference": ("Référence", Dossier.reference),
    "demandeur": ("Demandeur", Collectivite.name),
    "aide": ("Aide", Dossier.aid_number),
    "etat": ("État", _STATE_ORDER),
    "depose": ("Déposé le", Dossier.submitted_at),
    "demande": ("Montant demandé", Dossier.requested_amount),
    "calcule": ("Montant calculé", Dossier.computed_amount),
    "rejet": ("Rejet implicite le", Dossier.implicit_decision_on),
    "attribue": ("Attribué", Dossier.granted_amount),
    "verse": ("Versé", Dossier.paid_amount),
    "reste": ("Reste à verser", LEFT_TO_PAY),
    "instructeur": ("Instructeur", Assignee.full_name),
}
# The amount columns of a tab: what was asked while instructing, what was decided and paid after.
AMOUNT_SORTS = {False: ("demande", "calcule", "rejet"), True: ("attribue", "verse", "reste")}


def sorts_for(tab: Tab) -> dict[str, tuple[str, object]]:
    hidden = AMOUNT_SORTS[not tab.money]
    return {key: value for key, value in SORTS.items() if key not in hidden}
DEFAULT_SORT = "depose"  # oldest submissions first: they wait the longest


def default_tab(role: str) -> str:
    """Finance works on granted dossiers; instructors on those to instruct."""
    return "decides" if role == "finance" else "a-instruire"


def tabs_for(role: str) -> list[Tab]:
    return [t for t in TABS.values() if not t.mine or role in ASSIGNABLE_ROLES]


# --- what the filters may take -------------------------------------------------------------------


@dataclass(frozen=True)
class FilterOptions:
    """The values the filter menus offer; a value from the URL must be one of them."""

    aids: dict[int, str]
    departements: list[tuple[str, str]]  # (code, name)
    epcis: list[tuple[int, str | None, str]]  # (id, SIREN (an EPCI always has one), name)
    instructors: list[tuple[int, str]]  # (id, full name)
    labels: list[tuple[int, str, str]] = field(default_factory=list)  # (id, name, colour)
    campaigns: list[tuple[int, str, str]] = field(default_factory=list)  # (id, code, title), latest first

    @classmethod
    def load(cls) -> FilterOptions:
        # The campaigns and their aids in one query (a few rows); an aid is titled as in the
        # latest campaign.
        campaigns: dict[int, tuple[int, str, str]] = {}
        titles: dict[int, str] = {}
        for campaign_id, code, campaign_title, number, title in db.session.execute(
                select(Campaign.id, Campaign.code, Campaign.title, Aid.number, Aid.title)
                .outerjoin(Aid, Aid.campaign_id == Campaign.id)
                .order_by(Campaign.deadline_at.desc(), Campaign.id.desc())):
            campaigns.setdefault(campaign_id, (campaign_id, code, campaign_title))
            if number is not None:
                titles.setdefault(number, title)
        aids = dict(sorted(titles.items()))
        departements = db.session.execute(
            select(Departement.code, Departement.name).order_by(Departement.code)).all()
        epcis = db.session.execute(select(Epci.id, Epci.siren, Epci.name).order_by(Epci.name)).all()
        instructors = db.session.execute(
            select(User.id, User.full_name)
            .where(User.role.in_(ASSIGNABLE_ROLES), User.active.is_(True))
            .order_by(User.full_name)).all()
        labels = db.session.execute(select(Label.id, Label.name, Label.colour).order_by(Label.name)).all()
        return cls(aids=aids, departements=list(departements), epcis=list(epcis),
                   instructors=list(instructors), labels=list(labels), campaigns=list(campaigns.values()))

    def epci_id(self, siren: str) -> int | None:
        return next((id_ for id_, code, _ in self.epcis if code == siren), None)

    def campaign_id(self, code: str) -> int | None:
        return next((id_ for id_, c, _ in self.campaigns if c == code), None)


# --- the filters ---------------------------------------------------------------------------------

UNASSIGNED = "aucun"


@dataclass(frozen=True)
class QueueFilters:
    tab: str
    role: str
    user_id: int
    state: str | None = None
    campaign: str | None = None  # code
    campaign_id: int | None = None
    aid: int | None = None
    departement: str | None = None
    epci: str | None = None  # SIREN
    epci_id: int | None = None
    kind: str | None = None
    instructor: str | None = None  # a user id as text, or UNASSIGNED
    submitted_from: date | None = None
    submitted_to: date | None = None
    implicit_by: date | None = None  # open dossiers implicitly rejected on or before this day
    q: str = ""
    label: int | None = None
    changed: bool = False  # only the dossiers changed since the current user last opened them
    sort: str = DEFAULT_SORT
    descending: bool = False
    page: int = 1
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def to_args(self, **overrides) -> dict[str, str]:
        """The URL parameters that reproduce this view (defaults left out, except the tab, which
        also tells the dossier page that it was opened from the queue)."""
        f = replace(self, **overrides) if overrides else self
        args = {
            "onglet": f.tab,
            "etat": f.state,
            "campagne": f.campaign,
            "aide": f.aid,
            "departement": f.departement,
            "epci": f.epci,
            "type": f.kind,
            "instructeur": f.instructor,
            "depose_du": f.submitted_from.isoformat() if f.submitted_from else None,
            "depose_au": f.submitted_to.isoformat() if f.submitted_to else None,
            "rejet_au": f.implicit_by.isoformat() if f.implicit_by else None,
            "q": f.q or None,
            "etiquette": f.label,
            "modifies": "1" if f.changed else None,
            "tri": f.sort if f.sort != DEFAULT_SORT else None,
            "ordre": "desc" if f.descending else None,
            "page": f.page if f.page != 1 else None,
        }
        return {k: str(v) for k, v in args.items() if v is not None}

    @property
    def active_count(self) -> int:
        """How many filters narrow the list (the tab aside)."""
        return sum(v is not None and v != "" for v in (
            self.state, self.campaign, self.aid, self.departement, self.epci, self.kind, self.instructor,
            self.submitted_from, self.submitted_to, self.implicit_by, self.q, self.label)) + self.changed


def _shown(value: str) -> str:
    return value if len(value) <= 40 else value[:40] + "…"


def _parse_date(text: str) -> date | None:
    """``2026-11-28`` (what a date input sends) or ``28/11/2026``; None if not a plausible date."""
    for pattern, order in ((r"(\d{4})-(\d{1,2})-(\d{1,2})", "ymd"), (r"(\d{1,2})/(\d{1,2})/(\d{4})", "dmy")):
        if m := re.fullmatch(pattern, text):
            parts = [int(p) for p in m.groups()]
            year, month, day = parts if order == "ymd" else parts[::-1]
            if not 1900 <= year <= 2100:
                return None
            try:
                return date(year, month, day)
            except ValueError:
                return None
    return None


def parse_filters(args: Mapping[str, str], options: FilterOptions, *, role: str,
                  user_id: int) -> QueueFilters:
    """Read the queue's URL parameters. Unknown or malformed values are dropped with a warning."""
    warnings: list[str] = []

    def text(name: str) -> str:
        return (args.get(name) or "").replace("\x00", "").strip()

    def choice(name: str, allowed, message: str):
        value = text(name)
        if not value:
            return None
        if value not in allowed:
            warnings.append(message.format(_shown(value)))
            return None
        return value

    tabs = {t.key for t in tabs_for(role)}
    tab = choice("onglet", tabs, "Onglet « {} » inconnu : onglet par défaut affiché.") or default_tab(role)
    state = choice("etat", VISIBLE_STATES, "État « {} » inconnu : filtre ignoré.")
    campaign = choice("campagne", {code for _, code, _ in options.campaigns},
                      "Campagne « {} » inconnue : filtre ignoré.")
    aid = choice("aide", {str(n) for n in options.aids}, "Aide « {} » inconnue : filtre ignoré.")
    departement = choice("departement", {code for code, _ in options.departements},
                         "Département « {} » inconnu : filtre ignoré.")
    epci = choice("epci", {siren for _, siren, _ in options.epcis}, "EPCI « {} » inconnu : filtre ignoré.")
    kind = choice("type", COLLECTIVITE_KINDS, "Type de demandeur « {} » inconnu : filtre ignoré.")
    instructor = choice("instructeur", {str(i) for i, _ in options.instructors} | {UNASSIGNED},
                        "Instructeur « {} » inconnu : filtre ignoré.")

    dates: dict[str, date | None] = {}
    for name, label in (("depose_du", "de début"), ("depose_au", "de fin"),
                        ("rejet_au", "de rejet implicite")):
        value = text(name)
        dates[name] = _parse_date(value) if value else None
        if value and dates[name] is None:
            warnings.append(f"Date {label} « {_shown(value)} » invalide (attendu : JJ/MM/AAAA) : "
                            "filtre ignoré.")
    if dates["depose_du"] and dates["depose_au"] and dates["depose_du"] > dates["depose_au"]:
        warnings.append("La date de début est postérieure à la date de fin : filtre de dates ignoré.")
        dates |= {"depose_du": None, "depose_au": None}

    label = choice("etiquette", {str(i) for i, _, _ in options.labels}, "Étiquette « {} » inconnue : filtre ignoré.")
    changed = text("modifies") == "1"
    q = " ".join(text("q").split())
    if len(q) > MAX_SEARCH:
        warnings.append(f"Recherche limitée aux {MAX_SEARCH} premiers caractères.")
        q = q[:MAX_SEARCH].strip()

    sort = choice("tri", SORTS, "Tri « {} » inconnu : tri par date de dépôt.") or DEFAULT_SORT
    order = text("ordre")
    if order not in ("", "asc", "desc"):
        warnings.append(f"Ordre de tri « {_shown(order)} » inconnu : ordre croissant.")
    page_text = text("page")
    page = 1
    if page_text:
        if (number := bounded_int(page_text, high=10**9 - 1)) is not None:
            page = number
        else:
            warnings.append(f"Numéro de page « {_shown(page_text)} » invalide : première page affichée.")

    return QueueFilters(
        tab=tab, role=role, user_id=user_id, state=state, campaign=campaign,
        campaign_id=options.campaign_id(campaign) if campaign else None, aid=int(aid) if aid else None,
        departement=departement, epci=epci, epci_id=options.epci_id(epci) if epci else None,
        kind=kind, instructor=instructor, submitted_from=dates["depose_du"],
        submitted_to=dates["depose_au"], implicit_by=dates["rejet_au"], q=q, sort=sort,
        label=int(label) if label else None, changed=changed, descending=order == "desc", page=page,
        warnings=tuple(warnings),
    )


# --- SQL -----------------------------------------------------------------------------------------


def _paris_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=PARIS)


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class InSubquery(ColumnElement):
    """``column IN (subquery)``, written ``column = ANY(ARRAY(subquery))`` on PostgreSQL: the
    planner then runs the subquery once and walks the column's index (with ``IN`` it scans the
    whole table). The subquery's tables are not the outer query's (no join is added for them)."""

    type = Boolean()
    inherit_cache = False

    def __init__(self, column, subquery: Select):
        self.column, self.subquery = column, subquery.scalar_subquery()

    def get_children(self, **kw):
        return (self.column,)


@compiles(InSubquery)
def _in_subquery(element, compiler, **kw):
    return f"{compiler.process(element.column, **kw)} IN {compiler.process(element.subquery, **kw)}"


@compiles(InSubquery, "postgresql")
def _in_subquery_postgresql(element, compiler, **kw):
    return f"{compiler.process(element.column, **kw)} = ANY(ARRAY{compiler.process(element.subquery, **kw)})"


def filter_conditions(f: QueueFilters) -> list:
    """Every condition but the tab's (the tab counts apply them all)."""
    conditions: list[ColumnElement[bool]] = [Dossier.state.in_(VISIBLE_STATES)]
    if f.state:
        conditions.append(Dossier.state == f.state)
    if f.campaign_id:
        conditions.append(Dossier.campaign_id == f.campaign_id)
    if f.aid:
        conditions.append(Dossier.aid_number == f.aid)
    if f.departement:
        conditions.append(Collectivite.departement_code == f.departement)
    if f.epci_id:
        conditions.append(Collectivite.epci_id == f.epci_id)
    if f.kind:
        conditions.append(Collectivite.kind == f.kind)
    if f.instructor == UNASSIGNED:
        conditions.append(Dossier.assigned_to_id.is_(None))
    elif f.instructor:
        conditions.append(Dossier.assigned_to_id == int(f.instructor))
    if f.submitted_from:
        conditions.append(Dossier.submitted_at >= _paris_midnight(f.submitted_from))
    if f.submitted_to:  # inclusive: the whole last day, Europe/Paris
        conditions.append(Dossier.submitted_at < _paris_midnight(f.submitted_to + timedelta(days=1)))
    if f.implicit_by:
        conditions.append(Dossier.implicit_decision_on <= f.implicit_by)
    if f.label:
        conditions.append(exists(select(DossierLabel.label_id).where(
            DossierLabel.dossier_id == Dossier.id, DossierLabel.label_id == f.label)))
    if f.changed:
        conditions.append(changed_condition(f.user_id))
    for term in f.q.split():
        # The applicants named by the term are found in the small collectivité table first; the
        # reference is matched through its trigram index (PostgreSQL): no join, no scan per term.
        applicants = select(Collectivite.id).where(or_(
            Collectivite.search_name.contains(fold(term), autoescape=True),
            Collectivite.insee == term, Collectivite.siren == term))
        conditions.append(or_(Dossier.reference.ilike(_like(term), escape="\\"),
                              InSubquery(Dossier.collectivite_id, applicants)))
    return conditions


def tab_condition(tab: Tab, user_id: int):
    condition: ColumnElement[bool] = Dossier.state.in_(tab.states)
    if tab.awaiting_payment:
        condition = and_(condition, Dossier.id.in_(
            select(_REQUESTS.c.dossier_id).where(_REQUESTS.c.status == "sent")))
    return and_(condition, Dossier.assigned_to_id == user_id) if tab.mine else condition


def _conditions(f: QueueFilters) -> list:
    return [*filter_conditions(f), tab_condition(TABS[f.tab], f.user_id)]


# Sort keys that are never empty in the queue (submitted dossiers): no NULLS LAST on them, so that
# PostgreSQL walks ``ix_dossier_queue_order`` backwards for a descending sort instead of sorting.
NEVER_EMPTY_SORTS = {"reference", "aide", "etat", "depose"}


def _ordering(f: QueueFilters) -> list:
    column = SORTS[f.sort][1]
    key = column.desc() if f.descending else column.asc()
    # Empty values (a dossier not yet computed, an unassigned one) last; id keeps the order total,
    # which previous / next relies on.
    if f.sort not in NEVER_EMPTY_SORTS:
        key = key.nulls_last()
    return [key, Dossier.id.desc() if f.descending else Dossier.id.asc()]


def _joined(statement: Select) -> Select:
    return statement.join(Collectivite, Dossier.collectivite_id == Collectivite.id) \
                    .outerjoin(Assignee, Dossier.assigned_to_id == Assignee.id)


def _joined_as_needed(statement: Select) -> Select:
    """Join the applicant and the assignee only when a condition or the sort reads them: the tab
    counts and the ordered id scans of the default views then touch the dossier table alone."""
    where = () if statement.whereclause is None else (statement.whereclause,)
    clauses = [*statement.selected_columns, *where, *statement._order_by_clauses]
    tables = {t for clause in clauses for t in find_tables(clause, check_columns=True, include_aliases=True)}
    if Collectivite.__table__ in tables:
        statement = statement.join(Collectivite, Dossier.collectivite_id == Collectivite.id)
    if any(getattr(t, "name", None) == "assignee" for t in tables):
        statement = statement.outerjoin(Assignee, Dossier.assigned_to_id == Assignee.id)
    return statement.select_from(Dossier)


def rows_select(f: QueueFilters) -> Select:
    """The dossiers of the current tab, filtered and sorted; applicant and assignee come in the
    same query (no lazy load per row). The frozen evaluation (the bulk of a row) and the assignee's
    columns other than the name are not loaded: the queue shows neither."""
    return (
        _joined(select(Dossier))
        .options(defer(Dossier.evaluation), contains_eager(Dossier.collectivite),
                 contains_eager(Dossier.assigned_to.of_type(Assignee))
                 .load_only(Assignee.id, Assignee.full_name))
        .where(*_conditions(f))
        .order_by(*_ordering(f))
    )


def columns_select(f: QueueFilters, *columns) -> Select:
    """Any columns of the current tab's dossiers (applicant and assignee joined), with the queue's
    filters and order: what an export of the view reads."""
    return _joined(select(*columns).select_from(Dossier)).where(*_conditions(f)).order_by(*_ordering(f))


def page_ids_select(f: QueueFilters, limit: int, offset: int) -> Select:
    """The ids of one page, in order: an index-only walk for the default sort, whatever the page
    (the rows themselves are then loaded for those ids only)."""
    return (_joined_as_needed(select(Dossier.id).where(*_conditions(f)).order_by(*_ordering(f)))
            .limit(limit).offset(offset))


def counts_select(f: QueueFilters) -> Select:
    """Every tab's count, with the current filters, in one query."""
    columns = [func.count(case((tab_condition(tab, f.user_id), 1))).label(tab.key)
               for tab in tabs_for(f.role)]
    return _joined_as_needed(select(*columns).where(*filter_conditions(f)))


def tab_counts(f: QueueFilters) -> dict[str, int]:
    return dict(db.session.execute(counts_select(f)).one()._mapping)


@dataclass(frozen=True)
class Page:
    filters: QueueFilters
    counts: dict[str, int]
    dossiers: list[Dossier]
    total: int
    page: int
    pages: int
    totals: MoneyTotals | None = None

    @property
    def first_index(self) -> int:
        return (self.page - 1) * PER_PAGE + 1 if self.total else 0

    @property
    def last_index(self) -> int:
        return min(self.page * PER_PAGE, self.total)


@dataclass(frozen=True)
class MoneyTotals:
    granted: Decimal
    paid: Decimal
    left: Decimal


def money_totals(f: QueueFilters) -> MoneyTotals:
    """Granted, paid and left to pay over the whole filtered tab (every page), in one query."""
    row = db.session.execute(
        select(func.coalesce(func.sum(Dossier.granted_amount), 0),
               func.coalesce(func.sum(Dossier.paid_amount), 0),
               func.coalesce(func.sum(LEFT_TO_PAY), 0))
        .select_from(Dossier).join(Collectivite, Dossier.collectivite_id == Collectivite.id)
        .where(*_conditions(f))).one()
    granted, paid, left = (Decimal(str(v)).quantize(Decimal("0.01")) for v in row)
    return MoneyTotals(granted=granted, paid=paid, left=left)


@dataclass(frozen=True)
class AidMoney:
    aid_number: int
    title: str
    committed: Decimal  # what the envelopes hold: grants not yet paid off, and what was paid
    paid: Decimal
    left: Decimal


def money_by_aid(campaign_id: int) -> list[AidMoney]:
    """Finance's home: committed, paid and left to pay per aid of a campaign (one query)."""
    consuming = tuple(CONSUMING_STATES)
    balance_paid = tuple(s for s in CONSUMING_STATES if s in CLOSED_STATES)
    committed = case((Dossier.state.in_(balance_paid), func.coalesce(Dossier.paid_amount, 0)),
                     else_=Dossier.granted_amount)
    rows = db.session.execute(
        select(Aid.number, Aid.title,
               func.coalesce(func.sum(committed), 0), func.coalesce(func.sum(Dossier.paid_amount), 0),
               func.coalesce(func.sum(LEFT_TO_PAY), 0))
        .select_from(Aid)
        .outerjoin(Dossier, and_(Dossier.campaign_id == Aid.campaign_id, Dossier.aid_number == Aid.number,
                                 Dossier.state.in_(consuming)))
        .where(Aid.campaign_id == campaign_id)
        .group_by(Aid.number, Aid.title).order_by(Aid.number)).all()

    def euros(value) -> Decimal:
        return Decimal(str(value)).quantize(Decimal("0.01"))

    return [AidMoney(number, title, euros(c), euros(p), euros(left)) for number, title, c, p, left in rows]


def queue_page(f: QueueFilters) -> Page:
    """Counts first (one query), then the ids of the requested page (one query), then its rows;
    on finance's tabs, the totals of the filtered tab (one query)."""
    counts = tab_counts(f)
    total = counts[f.tab]
    pages = max(1, -(-total // PER_PAGE))
    page = f.page
    if page > pages:
        f = replace(f, page=pages, warnings=(*f.warnings, f"La page {page} n'existe pas : "
                                                          f"dernière page ({pages}) affichée."))
        page = pages
    ids = list(db.session.scalars(page_ids_select(f, PER_PAGE, (page - 1) * PER_PAGE)))
    dossiers = list(db.session.scalars(rows_select(f).where(Dossier.id.in_(ids)))) if ids else []
    totals = money_totals(f) if TABS[f.tab].money else None
    return Page(filters=f, counts=counts, dossiers=dossiers, total=total, page=page, pages=pages,
                totals=totals)


@dataclass(frozen=True)
class Neighbours:
    previous_id: int | None
    previous_reference: str | None
    next_id: int | None
    next_reference: str | None
    position: int
    total: int

    @property
    def page(self) -> int:
        return (self.position - 1) // PER_PAGE + 1


def _around(f: QueueFilters, value, dossier_id: int):
    """The conditions "comes before" and "comes after" the dossier whose sort key is ``value``, in
    the queue's order (empty keys last, whatever the direction; the id breaks ties)."""
    column = SORTS[f.sort][1]
    id_before = (Dossier.id > dossier_id) if f.descending else (Dossier.id < dossier_id)
    id_after = (Dossier.id < dossier_id) if f.descending else (Dossier.id > dossier_id)
    if value is None:  # among the empty keys, at the end
        return (or_(column.is_not(None), and_(column.is_(None), id_before)),
                and_(column.is_(None), id_after))
    key_before = (column > value) if f.descending else (column < value)
    key_after = (column < value) if f.descending else (column > value)
    before = or_(key_before, and_(column == value, id_before))
    after = or_(key_after, and_(column == value, id_after))
    if f.sort not in NEVER_EMPTY_SORTS:
        after = or_(after, column.is_(None))
    return before, after


def _reversed_ordering(f: QueueFilters) -> list:
    """The queue's order walked backwards (empty keys first, since they come last)."""
    column = SORTS[f.sort][1]
    key = column.asc() if f.descending else column.desc()
    if f.sort not in NEVER_EMPTY_SORTS:
        key = key.nulls_first()
    return [key, Dossier.id.asc() if f.descending else Dossier.id.desc()]


def neighbours(f: QueueFilters, dossier_id: int) -> Neighbours | None:
    """The dossier's place in the filtered, sorted queue, without ranking the whole queue: its sort
    key, the previous and the next by keyset (each the first row of an ordered walk), and counts.
    None when the dossier is not in that queue."""
    conditions = _conditions(f)

    def run(statement: Select):
        return db.session.execute(_joined_as_needed(statement))

    key = run(select(SORTS[f.sort][1].label("key")).where(Dossier.id == dossier_id, *conditions)).one_or_none()
    if key is None:
        return None
    before, after = _around(f, key.key, dossier_id)
    previous = run(select(Dossier.id, Dossier.reference).where(*conditions, before)
                   .order_by(*_reversed_ordering(f)).limit(1)).one_or_none()
    following = run(select(Dossier.id, Dossier.reference).where(*conditions, after)
                    .order_by(*_ordering(f)).limit(1)).one_or_none()
    counts = run(select(func.count(case((before, 1))).label("before"), func.count().label("total"))
                 .where(*conditions)).one()
    return Neighbours(previous_id=previous.id if previous else None,
                      previous_reference=previous.reference if previous else None,
                      next_id=following.id if following else None,
                      next_reference=following.reference if following else None,
                      position=counts.before + 1, total=counts.total)


STATE_CHOICES = [(s, STATE_LABELS[s]) for s in VISIBLE_STATES]
KIND_CHOICES = [(k, KIND_LABELS[k]) for k in COLLECTIVITE_KINDS]
