"""Sessions of the commission permanente: agenda, vote, and the grants of the adopted lines.

Services flush, never commit. The batch grants each adopted line through the grant service
(caps enforced there) in a savepoint of its own: a line that no longer fits is reported and its
dossier stays eligible; a line already granted is never granted again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import select

from instruction.accounts.models import User
from instruction.campaigns.models import Campaign
from instruction.commission.models import OUTCOMES, CommissionSession, SessionLine
from instruction.dossiers import envelopes
from instruction.dossiers import services as dossiers
from instruction.dossiers.evaluation import envelope_consumed, parameters
from instruction.dossiers.models import Dossier
from instruction.errors import Refusal
from instruction.extensions import db
from instruction.rules.formatting import format_date_fr, format_euros
from instruction.rules.money import CENT

STAFF = ("instructor", "admin")


class SessionRefused(Refusal):
    status = 409


class SessionForbidden(Refusal):
    status = 403


class InvalidSessionInput(Refusal):
    status = 400


def _require(actor: User, roles: tuple[str, ...], what: str) -> None:
    if actor.role not in roles:
        raise SessionForbidden(f"Votre rôle ne permet pas {what}.")


def _amount(value, computed: Decimal | None) -> Decimal:
    try:
        amount = Decimal(value)
    except (ArithmeticError, TypeError, ValueError):
        raise InvalidSessionInput("Montant invalide : indiquez des euros et des centimes.") from None
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(CENT):
        raise InvalidSessionInput("Le montant doit être positif, en euros et centimes.")
    computed = computed or Decimal("0.00")
    if amount > computed:
        raise InvalidSessionInput(f"Le montant ({format_euros(amount)}) ne peut pas dépasser le "
                                  f"montant calculé ({format_euros(computed)}).")
    return amount


def create_session(campaign: Campaign, *, session_on: date, place: str, actor: User,
                   now: datetime) -> CommissionSession:
    _require(actor, STAFF, "de créer une séance")
    if not campaign.grants_need_vote:
        raise SessionRefused("Les subventions de cette campagne sont attribuées sans vote : "
                             "aucune séance n'est nécessaire.")
    if not place or not place.strip():
        raise InvalidSessionInput("Indiquez le lieu de la séance.")
    session = CommissionSession(campaign=campaign, session_on=session_on, place=place.strip()[:200],
                                created_by=actor, created_at=now)
    db.session.add(session)
    db.session.flush()
    return session


def propose(session: CommissionSession, dossier: Dossier, amount, *, actor: User,
            now: datetime) -> SessionLine:
    """Put an eligible dossier on the agenda with an amount within its computed amount."""
    _require(actor, STAFF, "de proposer un dossier")
    if session.voted_at is not None:
        raise SessionRefused("La séance a déjà délibéré : proposez le dossier à une autre séance.")
    if dossier.campaign_id != session.campaign_id:
        raise SessionRefused("Ce dossier ne relève pas de la campagne de cette séance.")
    if dossier.state != "eligible":
        raise SessionRefused(f"Seul un dossier éligible peut être proposé (le dossier "
                             f"{dossier.reference} est « {dossier.state_label} »).")
    waiting = db.session.scalar(
        select(CommissionSession.session_on).join(SessionLine)
        .where(SessionLine.dossier_id == dossier.id, CommissionSession.voted_at.is_(None)))
    if waiting is not None:
        raise SessionRefused(f"Le dossier {dossier.reference} est déjà inscrit à la séance du "
                             f"{format_date_fr(waiting)}.")
    line = SessionLine(dossier=dossier, proposed_amount=_amount(amount, dossier.computed_amount),
                       proposed_by=actor, proposed_at=now, outcome="pending")
    session.lines.append(line)
    db.session.flush()
    return line


def record_vote(session: CommissionSession, *, number: str,
                outcomes: dict[int, tuple[str, Decimal | str | None]], actor: User,
                now: datetime) -> None:
    """The deliberation: its number and, per line, adopted / amended (with the amount voted) /
    deferred / rejected. Admin only, once."""
    _require(actor, ("admin",), "d'enregistrer la délibération")
    if session.voted_at is not None:
        raise SessionRefused("La délibération de cette séance est déjà enregistrée.")
    number = (number or "").strip()
    if not number or len(number) > 60:
        raise InvalidSessionInput("Indiquez le numéro de la délibération (60 caractères au plus).")
    if db.session.scalar(select(CommissionSession.id).where(
            CommissionSession.deliberation_number == number, CommissionSession.id != session.id)):
        raise InvalidSessionInput(f"Le numéro de délibération « {number} » est déjà utilisé.")
    if not session.lines:
        raise SessionRefused("La séance n'a aucun dossier inscrit.")
    votes = []  # every line checked before any is changed
    for line in session.lines:
        outcome, amount = outcomes.get(line.id, (None, None))
        if outcome not in OUTCOMES or outcome == "pending":
            raise InvalidSessionInput(f"Indiquez le vote sur le dossier {line.dossier.reference}.")
        voted = {"adopted": line.proposed_amount,
                 "amended": _amount(amount, line.dossier.computed_amount) if outcome == "amended" else None,
                 }.get(outcome)
        votes.append((line, outcome, voted))
    for line, outcome, voted in votes:
        line.outcome, line.voted_amount = outcome, voted
    session.deliberation_number = number
    session.voted_at = now
    db.session.flush()


@dataclass(frozen=True)
class BatchReport:
    granted: list[SessionLine]
    reported: list[SessionLine]


def grant_adopted(session: CommissionSession, *, actor: User, now: datetime) -> BatchReport:
    """Grant every adopted line not granted yet, each citing the deliberation."""
    _require(actor, ("admin",), "d'exécuter la délibération")
    if session.voted_at is None:
        raise SessionRefused("La délibération n'est pas encore enregistrée.")
    deliberation = {"number": session.deliberation_number,
                    "session_on": format_date_fr(session.session_on), "place": session.place}
    granted, reported = [], []
    for line in session.lines:
        if line.outcome not in ("adopted", "amended") or line.result == "granted":
            continue
        dossier = line.dossier
        report = None
        if dossier.state != "eligible":
            report = (f"Le dossier n'est plus éligible (état « {dossier.state_label} ») : "
                      "rien n'est attribué.")
        else:
            try:
                with db.session.begin_nested():
                    dossiers.grant(dossier, actor, line.voted_amount, now=now,
                                   deliberation=deliberation)
            except Refusal as refusal:
                db.session.refresh(dossier)
                report = refusal.message
        if report is None:
            line.result, line.report, line.processed_at = "granted", None, now
            granted.append(line)
        else:
            if (line.result, line.report) != ("reported", report):
                line.result, line.report, line.processed_at = "reported", report, now
            reported.append(line)
    db.session.flush()
    return BatchReport(granted=granted, reported=reported)


# --- the agenda ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgendaRow:
    line: SessionLine
    aid_number: int
    aid_title: str
    epci: str
    reference: str
    beneficiary: str
    computed: Decimal
    proposed: Decimal
    cap: Decimal
    before: Decimal  # consumed in the envelope before this line (committed + lines above)
    after: Decimal


def agenda(session: CommissionSession) -> list[AgendaRow]:
    """One row per dossier, grouped by aid and EPCI; each envelope before and after the lines."""
    lines = sorted(session.lines, key=lambda line: (
        line.dossier.aid_number, _epci_name(line.dossier), line.dossier.reference or ""))
    running: dict[tuple[int, str], Decimal] = {}
    rows = []
    for line in lines:
        dossier = line.dossier
        params = parameters(dossier)
        cap = envelopes.cap_limit(dossier.campaign, dossier.aid_number, session.created_at)
        key = (dossier.aid_number, dossier.cap_scope or "")
        if key not in running:
            running[key] = envelope_consumed(dossier.campaign_id, dossier.aid_number, dossier.cap_scope)
        before = running[key]
        amount = line.voted_amount if line.voted_amount is not None else line.proposed_amount
        if line.outcome in ("deferred", "rejected") or line.result == "granted":
            after = before  # a granted line is already in the committed figure
        else:
            after = before + amount
        running[key] = after
        rows.append(AgendaRow(
            line=line, aid_number=dossier.aid_number, aid_title=params.aid(dossier.aid_number).title,
            epci=_epci_name(dossier), reference=dossier.reference or "", beneficiary=dossier.collectivite.name,
            computed=dossier.computed_amount or Decimal("0.00"), proposed=line.proposed_amount,
            cap=cap, before=before, after=after))
    return rows


def _epci_name(dossier: Dossier) -> str:
    collectivite = dossier.collectivite
    if collectivite.kind == "epci":
        return collectivite.name
    return collectivite.epci.name if collectivite.epci is not None else "—"


def sessions_of(campaign_id: int | None = None) -> list[CommissionSession]:
    query = select(CommissionSession).order_by(CommissionSession.session_on.desc(), CommissionSession.id.desc())
    if campaign_id is not None:
        query = query.where(CommissionSession.campaign_id == campaign_id)
    return list(db.session.scalars(query))
