"""Dossier operations: one verb per transition of ``workflow.TRANSITIONS``, plus drafting.

Services are the only code that changes a dossier's state. Each transition is one conditional
UPDATE (``WHERE state = <the state it was read in>``), so two clicks or two instructors can never
apply it twice; it writes its audit event and queues its notification in the same transaction.
Services flush but never commit: the caller (a view, a task, a command) commits, or rolls back
on any exception.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from instruction.accounts.models import User
from instruction.accounts.services import approved_agents_of, approved_agents_query
from instruction.acts import services as acts
from instruction.audit import chain as audit_chain
from instruction.campaigns.models import Campaign
from instruction.db import rowcount
from instruction.dossiers import envelopes
from instruction.dossiers.evaluation import evaluate_dossier, scope_of
from instruction.dossiers.models import (
    AuditEvent,
    Dossier,
    DossierMessage,
    ExpenseLine,
    OperationToken,
    PackGrant,
    Payment,
)
from instruction.dossiers.team import team_of
from instruction.dossiers.workflow import (
    SYSTEM,
    TRANSITIONS,
    Context,
    deadline_of,
    unavailable_reason,
)
from instruction.errors import Refusal
from instruction.extensions import db
from instruction.notifications import services as notifications
from instruction.rules.formatting import format_date_fr, format_euros
from instruction.rules.parameters import last_day_before, paris_date
from instruction.rules.simulator import decision_as_dict

CENT = Decimal("0.01")


class WorkflowError(Refusal):
    """An action on a dossier refused."""

    status = 409


class ActionForbidden(WorkflowError):
    status = 403


class ActionConflict(WorkflowError):
    status = 409


class InvalidAction(WorkflowError):
    status = 400


class AlreadyDone(WorkflowError):
    """The same form was sent again (double click, replayed POST): the first one did the work."""

    status = 200

    def __init__(self, message: str = "Ce formulaire avait déjà été envoyé : l'opération n'a été "
                                      "enregistrée qu'une fois."):
        super().__init__(message)


class ConfirmationRequired(WorkflowError):
    """A final payment below the grant: it is confirmed with the amount it releases."""

    status = 200

    def __init__(self, message: str, release: Decimal):
        super().__init__(message)
        self.release = release


def context_for(actor: User | None, now: datetime) -> Context:
    if actor is None:
        return Context(role=SYSTEM, now=now)
    return Context(role=actor.role, now=now, user_id=actor.id, collectivite_id=actor.collectivite_id)


def reference_for(dossier: Dossier) -> str:
    """Human-readable and unique: ``PAIR21-A4-000123`` (campaign prefix, aid, dossier number)."""
    return f"{dossier.campaign.reference_prefix}-A{dossier.aid_number}-{dossier.id:06d}"


# --- drafting (no state change) ----------------------------------------------------------------


def create_draft(*, campaign: Campaign, aid_number: int, collectivite, author: User | None,
                 title: str = "", now: datetime) -> Dossier:
    dossier = Dossier(campaign=campaign, aid_number=aid_number, collectivite=collectivite,
                      created_by=author, title=title, state="draft", created_at=now, updated_at=now)
    db.session.add(dossier)
    db.session.flush()
    dossier.reference = reference_for(dossier)
    db.session.add(AuditEvent(dossier=dossier, actor=author, action="create", from_state=None,
                              to_state="draft", at=now))
    return dossier


def add_line(dossier: Dossier, *, category: str, label: str, amount_ht: Decimal,
             pack: int | None = None, months: int | None = None) -> ExpenseLine:
    line = ExpenseLine(category=category, label=label, amount_ht=amount_ht, pack=pack, months=months)
    dossier.lines.append(line)
    return line


def assign(dossier: Dossier, instructor: User, *, now: datetime) -> AuditEvent:
    """"Je m'en occupe": the instructor takes the dossier (no state change, but audited)."""
    check_transition("assign", dossier, instructor, now, None)
    event = apply_transition("assign", dossier, instructor, now, None, assigned_to_id=instructor.id)
    set_committed_value(dossier, "assigned_to", instructor)
    return event


# --- the transition machinery ----------------------------------------------------------------


def _recipients(dossier: Dossier, who: tuple[str, ...]) -> list[User]:
    users: list[User] = []
    if "applicants" in who:
        users += db.session.scalars(approved_agents_query(dossier.collectivite_id))
    if "assigned" in who and dossier.assigned_to is not None:
        users.append(dossier.assigned_to)
    if "team" in who:
        users += team_of(dossier)
    if "finance" in who:
        users += db.session.scalars(select(User).where(User.role == "finance", User.active.is_(True))
                                    .order_by(User.id))
    return users


def check_transition(action: str, dossier: Dossier, actor: User | None, now: datetime, reason: str | None):
    """Refuse ``action`` unless the table allows it: the actor's role, their collectivité, the
    dossier's state and the transition's guards. With ``apply_transition``, what every verb of a
    dossier goes through, here and in ``payment_requests``."""
    transition = TRANSITIONS[action]
    ctx = context_for(actor, now)
    if not transition.allows_role(ctx):
        raise ActionForbidden("Votre rôle ne permet pas cette action sur le dossier.")
    if ctx.role == "applicant" and dossier.collectivite_id != ctx.collectivite_id:
        raise ActionForbidden("Ce dossier n'appartient pas à votre collectivité.")
    if why := unavailable_reason(transition, dossier, ctx):
        raise ActionConflict(why)
    if transition.needs_reason and not (reason and reason.strip()):
        raise InvalidAction("Indiquez un motif : il est communiqué au demandeur et conservé dans l'historique.")
    return transition


def apply_transition(action: str, dossier: Dossier, actor: User | None, now: datetime, reason: str | None,
                     extra_context: dict | None = None, event_fields: dict | None = None, *,
                     expected: dict | None = None, issue: Callable[[], dict] | None = None,
                     **fields) -> AuditEvent:
    """Move the dossier (with ``fields``) in one conditional UPDATE; audit and notify. The UPDATE
    matches only the state it was read in, and the ``expected`` column values (the amounts a money
    operation computed from). ``issue`` issues the legal act of the transition once the dossier
    has moved and returns what the notification adds to its context (the act, its dates)."""
    transition = TRANSITIONS[action]
    from_state = dossier.state
    target = transition.target_from(from_state)
    conditions = [getattr(Dossier, name).is_(None) if value is None else getattr(Dossier, name) == value
                  for name, value in (expected or {}).items()]
    db.session.flush()
    result = db.session.execute(
        update(Dossier)
        .where(Dossier.id == dossier.id, Dossier.state == from_state, *conditions)
        .values(state=target, updated_at=now, **fields)
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) != 1:
        raise ActionConflict("Le dossier vient d'être modifié par ailleurs : rechargez la page.")
    for name, value in {"state": target, "updated_at": now, **fields}.items():
        set_committed_value(dossier, name, value)
    event = AuditEvent(dossier=dossier, actor=actor, action=action, from_state=from_state,
                       to_state=target, at=now, reason=(reason or "").strip() or None,
                       **(event_fields or {}))
    db.session.add(event)
    db.session.flush()
    extra = issue() if issue is not None else {}
    notifications.queue(
        action, key=f"dossier:{dossier.id}:event:{event.id}", dossier=dossier,
        recipients=_recipients(dossier, transition.notify),
        context={**_event_context(dossier, event), **(extra_context or {}), **extra}, now=now,
    )
    return event


def _event_context(dossier: Dossier, event: AuditEvent) -> dict:
    """What the e-mails of a transition show, as it is at the event (amounts and dates in French)."""
    context = {"reference": dossier.reference, "reason": event.reason, "state": event.to_state,
               "title": dossier.title, "collectivite": dossier.collectivite.name,
               "at": format_date_fr(paris_date(event.at))}
    if dossier.submitted_at is not None:
        context["submitted_on"] = format_date_fr(paris_date(dossier.submitted_at))
    if dossier.granted_amount is not None:
        context["granted_amount"] = format_euros(dossier.granted_amount)
    return context


def take(dossier: Dossier) -> None:
    """Take the dossier for the rest of the transaction, and read it again as it is now.

    PostgreSQL: a row lock (``SELECT … FOR UPDATE``): a second payment, final payment or
    cancellation of the same dossier waits for this transaction to end, then reads what it wrote.
    SQLite: every transaction already holds the write lock from its start (``BEGIN IMMEDIATE``)."""
    db.session.flush()
    db.session.execute(select(Dossier).where(Dossier.id == dossier.id).with_for_update()
                       .execution_options(populate_existing=True)).scalar_one()
    db.session.expire(dossier, ["payments"])


def _amounts_read(dossier: Dossier) -> dict:
    return {"granted_amount": dossier.granted_amount, "paid_amount": dossier.paid_amount}


def _claim(token: str | None, dossier: Dossier, action: str, now: datetime) -> None:
    """The form's one-time token: a second use (double click, replayed POST) is ``AlreadyDone``."""
    if not token:
        return
    if db.session.get(OperationToken, token) is not None:
        raise AlreadyDone()
    try:
        with db.session.begin_nested():
            db.session.add(OperationToken(token=token, dossier_id=dossier.id, action=action, done_at=now))
    except IntegrityError:
        raise AlreadyDone() from None


def _check_payment_date(dossier: Dossier, paid_on: date, now: datetime) -> None:
    """Between the grant decision and today, in Europe/Paris."""
    if paid_on > paris_date(now):
        raise InvalidAction("La date du versement ne peut pas être dans le futur : enregistrez le "
                            "versement une fois effectué.")
    if dossier.decided_at is not None and paid_on < paris_date(dossier.decided_at):
        raise InvalidAction(f"La date du versement ({format_date_fr(paid_on)}) ne peut pas précéder la "
                            f"décision d'attribution du {format_date_fr(paris_date(dossier.decided_at))}.")


def _check_reference_free(reference: str, budget_year: int) -> None:
    """A mandate reference names one payment per budget year (cancelled payments excepted)."""
    holder = db.session.scalar(
        select(Dossier.reference).join(Payment, Payment.dossier_id == Dossier.id)
        .where(Payment.budget_year == budget_year, Payment.cancelled_at.is_(None),
               func.upper(Payment.reference) == reference.upper())
        .limit(1))
    if holder is not None:
        raise InvalidAction(f"La référence « {reference} » est déjà celle d'un versement de l'exercice "
                            f"{budget_year}, sur le dossier {holder}.")


def _failed_findings(decision) -> str:
    return " ".join(f.message for f in decision.findings if f.blocking and not f.ok)


# --- one verb per transition -------------------------------------------------------------------


def submit(dossier: Dossier, actor: User, *, now: datetime) -> AuditEvent:
    check_transition("submit", dossier, actor, now, None)
    collectivite = dossier.collectivite
    decision = evaluate_dossier(dossier, now)
    if not decision.eligible:
        raise ActionConflict(f"Le dossier ne peut pas être déposé. {_failed_findings(decision)}")
    return apply_transition("submit", dossier, actor, now, None, submitted_at=now,
                  issue=lambda: _acknowledge(dossier, now), completed_at=None, documents_due_on=None,
                  implicit_decision_on=acts.implicit_decision_on(dossier, now, None),
                  population=collectivite.population, population_source=collectivite.population_source,
                  population_year=collectivite.population_year, cap_scope=decision.cap.scope,
                  requested_amount=decision.amount)


def request_documents(dossier: Dossier, actor: User, message: str, *, due_on: date | None = None,
                      now: datetime) -> AuditEvent:
    """A message of the thread that also asks for documents by ``due_on`` (a date after today;
    default: the acts' rule)."""
    check_transition("request_documents", dossier, actor, now, message)
    if due_on is not None and due_on <= paris_date(now):
        raise InvalidAction("La date limite de réponse doit être postérieure à aujourd'hui.")
    due = due_on or acts.documents_due_on(dossier, now)
    dossier.messages.append(DossierMessage(author=actor, body=message.strip().replace("\r\n", "\n"),
                                           created_at=now, kind="request_documents", from_staff=True,
                                           due_on=due))
    # Back to the applicant: an eligibility declared before no longer holds (see _going_back).
    # L114-5: what is missing and by when; the implicit-decision period runs again on completion.
    return apply_transition("request_documents", dossier, actor, now, message,
                  issue=lambda: {"missing": message.strip(), "due_on": format_date_fr(due)},
                  documents_due_on=due, implicit_decision_on=None, **_going_back())


def resubmit(dossier: Dossier, actor: User, message: str = "", *, now: datetime) -> AuditEvent:
    check_transition("resubmit", dossier, actor, now, None)
    if message.strip():
        dossier.messages.append(DossierMessage(author=actor, body=message.strip().replace("\r\n", "\n"),
                                               created_at=now, from_staff=False))
    # The lines may have changed while documents were requested: the request follows them.
    requested = evaluate_dossier(dossier, now).amount
    assert dossier.submitted_at is not None  # documents are requested of a submitted dossier
    return apply_transition("resubmit", dossier, actor, now, message, requested_amount=requested,
                  issue=lambda: _acknowledge(dossier, now, completed_at=now),
                  completed_at=now, documents_due_on=None,
                  implicit_decision_on=acts.implicit_decision_on(dossier, dossier.submitted_at, now))


def declare_eligible(dossier: Dossier, actor: User, *, now: datetime) -> AuditEvent:
    """Freeze the rule evaluation (findings, base, amount, parameters' version) on the dossier."""
    check_transition("declare_eligible", dossier, actor, now, None)
    decision = evaluate_dossier(dossier, now)
    if not decision.eligible:
        raise ActionConflict(f"Les règles ne permettent pas de déclarer ce dossier éligible. "
                             f"{_failed_findings(decision)}")
    return apply_transition("declare_eligible", dossier, actor, now, None, evaluation=decision_as_dict(decision),
                  computed_amount=decision.amount, cap_scope=decision.cap.scope)


def declare_ineligible(dossier: Dossier, actor: User, reason: str, *, now: datetime) -> AuditEvent:
    check_transition("declare_ineligible", dossier, actor, now, reason)
    return apply_transition("declare_ineligible", dossier, actor, now, reason, decided_at=now, closed_at=now,
                  implicit_decision_on=None,
                  issue=lambda: _letter(acts.issue_decision_letter(dossier, "ineligibility",
                                                                   reason=reason, now=now)))


def grant(dossier: Dossier, actor: User, amount: Decimal | None = None, *,
          now: datetime, token: str | None = None, deliberation: dict | None = None) -> AuditEvent:
    """Commit ``amount`` (default: the computed amount) to the dossier's envelope and grant it.

    When the campaign's grants are voted in session, only the adopted deliberation (its number
    and session date, cited by the letter) grants."""
    _claim(token, dossier, "grant", now)
    check_transition("grant", dossier, actor, now, None)
    if dossier.campaign.grants_need_vote and deliberation is None:
        raise ActionConflict("Les subventions de cette campagne sont votées par la commission "
                             "permanente : proposez le dossier à une séance.")
    computed = dossier.computed_amount or Decimal("0.00")
    amount = computed if amount is None else Decimal(amount)
    if amount != amount.quantize(CENT) or amount <= 0:
        raise InvalidAction("Le montant attribué doit être positif, en euros et centimes.")
    if amount > computed:
        raise InvalidAction(f"Le montant attribué ({format_euros(amount)}) ne peut pas dépasser le "
                            f"montant calculé ({format_euros(computed)}).")
    envelope = _envelope_of(dossier, now)
    if envelopes.over_cap(envelope):
        raise ActionConflict(
            f"Le plafond de l'enveloppe a été abaissé à {format_euros(envelope.cap_limit)}, en dessous "
            f"de ce qui est déjà engagé ({format_euros(envelope.consumed)}) : aucune nouvelle "
            f"attribution n'est possible sur cette enveloppe.")
    if not envelopes.consume(envelope, amount):
        raise ActionConflict(
            f"Le plafond est atteint : l'enveloppe ne peut plus recevoir que "
            f"{format_euros(envelopes.remaining(envelope))} (plafond {format_euros(envelope.cap_limit)}, "
            f"déjà engagé {format_euros(envelope.consumed)}).")
    if dossier.aid_number == 1:
        _grant_packs(dossier)
    return apply_transition("grant", dossier, actor, now, None, granted_amount=amount, decided_at=now,
                  implicit_decision_on=None,
                  issue=lambda: _letter(acts.issue_grant_letter(dossier, amount=amount, now=now,
                                                                deliberation=deliberation)))


def refuse(dossier: Dossier, actor: User, reason: str, *, now: datetime) -> AuditEvent:
    check_transition("refuse", dossier, actor, now, reason)
    return apply_transition("refuse", dossier, actor, now, reason, decided_at=now, closed_at=now,
                  implicit_decision_on=None,
                  issue=lambda: _letter(acts.issue_decision_letter(dossier, "refusal", reason=reason,
                                                                   now=now)))


def record_payment(dossier: Dossier, actor: User, *, amount: Decimal, paid_on: date, reference: str,
                   final: bool, now: datetime, token: str | None = None,
                   confirmed_release: Decimal | None = None, note: str | None = None) -> AuditEvent:
    """A versement (``note``: what the history adds, e.g. the payment request it pays). The final one (or one that pays the grant in full) marks the dossier paid and
    releases the unpaid remainder of its envelope; a final one below the grant must be confirmed
    with the amount it releases (``confirmed_release``).

    The dossier is taken first (``take``): two payments, or a payment and a cancellation, are
    applied one after the other, each reading what the previous one wrote."""
    take(dossier)
    _claim(token, dossier, "record_payment", now)
    amount = Decimal(amount)
    reference = reference.strip()
    already = dossier.paid_amount or Decimal("0.00")
    granted = dossier.granted_amount or Decimal("0.00")
    final = final or already + amount == granted
    action = "record_final_payment" if final else "record_payment"
    check_transition(action, dossier, actor, now, None)
    if amount != amount.quantize(CENT) or amount <= 0:
        raise InvalidAction("Le montant du versement doit être positif, en euros et centimes.")
    if already + amount > granted:
        raise InvalidAction(
            f"Le versement dépasse le montant attribué : {format_euros(granted)} attribués, "
            f"{format_euros(already)} déjà versés, reste {format_euros(granted - already)}.")
    if not reference:
        raise InvalidAction("Indiquez la référence du versement (mandat, titre…).")
    _check_payment_date(dossier, paid_on, now)
    _check_reference_free(reference, paid_on.year)
    paid = already + amount
    release = granted - paid if final else Decimal("0.00")
    if release > 0 and confirmed_release != release:
        raise ConfirmationRequired(
            f"Ce versement final solde le dossier à {format_euros(paid)} pour {format_euros(granted)} "
            f"attribués : {format_euros(release)} seront rendus à l'enveloppe et ne pourront plus être "
            f"versés sur ce dossier. Confirmez le versement final.", release)
    payment = Payment(amount=amount, paid_on=paid_on, reference=reference, budget_year=paid_on.year,
                      is_final=final, recorded_by=actor, recorded_at=now)
    try:
        with db.session.begin_nested():
            dossier.payments.append(payment)
            db.session.flush()
    except IntegrityError:
        _check_reference_free(reference, paid_on.year)  # a payment of another dossier took it meanwhile
        raise ActionConflict("Le dossier vient d'être modifié par ailleurs : rechargez la page.") from None
    fields: dict = {"paid_amount": paid}
    if final:
        envelopes.release(_envelope_of(dossier, now), release)
        fields["closed_at"] = now
    reason = f"Versement de {format_euros(amount)} ({reference}), versé le {format_date_fr(paid_on)}"
    if note:
        reason += f" ; {note}"
    return apply_transition(action, dossier, actor, now, reason, expected=_amounts_read(dossier), **fields)


def record_zero_balance(dossier: Dossier, actor: User, *, now: datetime, token: str | None = None,
                        confirmed_release: Decimal | None = None, note: str | None = None) -> AuditEvent:
    """The balance settled at 0,00 €: the final payment of a balance that justifies nothing more
    than what was already paid. No money moves and no ``Payment`` is made (no mandate, no date):
    the dossier is paid at what was already paid (0.00 included) and the rest of the grant goes
    back to the envelope, confirmed with that amount like a final payment below the grant.

    Only ``payment_requests.services.settle_at_zero`` calls it, for a sent balance request whose
    payable amount is 0; ``record_payment`` still refuses an amount of 0.

    The way back: with no payment row, ``cancel_payment`` has nothing of its own to cancel. After
    instalments, cancelling one of them (finance or admin, with a reason) brings the dossier back
    to granted and takes back what this released; without any payment, the closure is final."""
    take(dossier)
    _claim(token, dossier, "record_final_payment", now)
    check_transition("record_final_payment", dossier, actor, now, None)
    already = dossier.paid_amount or Decimal("0.00")
    granted = dossier.granted_amount or Decimal("0.00")
    release = granted - already
    if release > 0 and confirmed_release != release:
        raise ConfirmationRequired(
            f"Le solde est arrêté à 0,00 € : le dossier est soldé à {format_euros(already)} versés pour "
            f"{format_euros(granted)} attribués, sans nouveau versement ; {format_euros(release)} seront "
            f"rendus à l'enveloppe et ne pourront plus être versés sur ce dossier. Confirmez le solde à "
            f"0,00 €.", release)
    envelopes.release(_envelope_of(dossier, now), release)
    reason = (f"Solde arrêté à 0,00 €, sans versement : {format_euros(already)} versés au total, "
              f"{format_euros(release)} rendus à l'enveloppe")
    if note:
        reason += f" ; {note}"
    context = {"zero_balance": True, "paid": format_euros(already), "paid_before": already > 0,
               "released": format_euros(release)}
    return apply_transition("record_final_payment", dossier, actor, now, reason, context,
                  expected=_amounts_read(dossier), paid_amount=already, closed_at=now)


def cancel_payment(dossier: Dossier, payment_id: int, actor: User, reason: str, *, now: datetime,
                   token: str | None = None) -> AuditEvent:
    """A payment recorded by mistake (finance or admin, with a reason). It stays, marked cancelled,
    and counts for nothing: the paid total goes down by its amount. A paid dossier goes back to
    granted and its envelope takes back the remainder its balance had released."""
    take(dossier)
    _claim(token, dossier, "cancel_payment", now)
    check_transition("cancel_payment", dossier, actor, now, reason)
    payment = next((p for p in dossier.payments if p.id == payment_id), None)
    if payment is None or payment.cancelled_at is not None:
        raise ActionConflict("Ce versement est déjà annulé ou n'est pas un versement de ce dossier.")
    granted = dossier.granted_amount or Decimal("0.00")
    paid = dossier.paid_amount or Decimal("0.00")
    if dossier.state == "paid" and granted - paid > 0:
        envelope = _envelope_of(dossier, now)
        if not envelopes.consume(envelope, granted - paid):
            raise ActionConflict(
                f"L'enveloppe ne peut plus reprendre les {format_euros(granted - paid)} rendus au solde "
                f"du dossier (il lui reste {format_euros(envelopes.remaining(envelope))}) : le versement "
                f"ne peut pas être annulé.")
    payment.cancelled_at = now
    payment.cancelled_by = actor
    payment.cancel_reason = reason.strip()
    db.session.flush()
    left = paid - payment.amount
    text = (f"Versement de {format_euros(payment.amount)} ({payment.reference}) du "
            f"{format_date_fr(payment.paid_on)} annulé : {reason.strip()}")
    return apply_transition("cancel_payment", dossier, actor, now, text, expected=_amounts_read(dossier),
                  paid_amount=left if left > 0 else None, closed_at=None)


def withdraw(dossier: Dossier, actor: User, reason: str, *, now: datetime) -> AuditEvent:
    check_transition("withdraw", dossier, actor, now, reason)
    return apply_transition("withdraw", dossier, actor, now, reason, closed_at=now, implicit_decision_on=None)


def expire(dossier: Dossier, actor: User | None = None, *, now: datetime) -> AuditEvent:
    check_transition("expire", dossier, actor, now, None)
    return apply_transition("expire", dossier, actor, now, "Date limite de dépôt dépassée.", closed_at=now)


def expire_many(dossier_ids: Sequence[int], *, now: datetime) -> int:
    """``expire`` for the deadline job, on a batch of drafts at once: each dossier passes the same
    check as ``expire`` (the one deadline rule, the dossier's own extension included), then one
    conditional UPDATE (a draft submitted meanwhile is left alone), their audit events in one
    INSERT on the chain and their notifications in one. Returns how many were expired."""
    transition = TRANSITIONS["expire"]
    ctx = context_for(None, now)
    drafts = db.session.scalars(select(Dossier).where(Dossier.id.in_(dossier_ids))
                                .options(joinedload(Dossier.campaign), joinedload(Dossier.collectivite))
                                .order_by(Dossier.id)).all()
    due = [d for d in drafts if unavailable_reason(transition, d, ctx) is None]
    if not due:
        return 0
    db.session.flush()
    expired = set(db.session.scalars(
        update(Dossier).where(Dossier.id.in_([d.id for d in due]), Dossier.state.in_(transition.sources))
        .values(state=transition.target, updated_at=now, closed_at=now).returning(Dossier.id)
        .execution_options(synchronize_session=False)))
    due = [d for d in due if d.id in expired]
    reason = "Date limite de dépôt dépassée."
    for dossier in due:
        for name, value in {"state": transition.target, "updated_at": now, "closed_at": now}.items():
            set_committed_value(dossier, name, value)
    event_ids = audit_chain.append_many(db.session.connection(), [
        {"dossier_id": d.id, "actor_id": None, "action": "expire", "from_state": "draft",
         "to_state": transition.target, "at": now, "reason": reason} for d in due])
    agents = approved_agents_of(d.collectivite_id for d in due) if "applicants" in transition.notify else {}
    event = AuditEvent(reason=reason, to_state=transition.target, at=now)  # what the e-mails show of each
    notifications.queue_many("expire", [
        notifications.Pending(
            key=f"dossier:{d.id}:event:{event_id}", dossier_id=d.id,
            recipients=agents.get(d.collectivite_id, []), context=_event_context(d, event))
        for d, event_id in zip(due, event_ids, strict=True)], now=now)
    return len(due)


def cancel_grant(dossier: Dossier, actor: User, reason: str, *, now: datetime,
                 token: str | None = None) -> AuditEvent:
    """Admin only, with a reason: releases the commitment and returns the dossier to eligible."""
    take(dossier)
    _claim(token, dossier, "cancel_grant", now)
    check_transition("cancel_grant", dossier, actor, now, reason)
    assert dossier.granted_amount is not None  # set with the grant (CHECK granted_has_amount)
    envelopes.release(_envelope_of(dossier, now), dossier.granted_amount)
    for pack_grant in db.session.scalars(select(PackGrant).where(PackGrant.dossier_id == dossier.id)):
        db.session.delete(pack_grant)
    letter = acts.issue_decision_letter(dossier, "cancellation", reason=reason, now=now)
    return apply_transition("cancel_grant", dossier, actor, now, reason, expected=_amounts_read(dossier),
                  granted_amount=None, paid_amount=None, decided_at=None,
                  issue=lambda: _letter(letter))


def reopen(dossier: Dossier, actor: User, reason: str, *, now: datetime) -> AuditEvent:
    check_transition("reopen", dossier, actor, now, reason)
    return apply_transition("reopen", dossier, actor, now, reason, decided_at=None, closed_at=None, **_going_back())


def extend_deadline(dossier: Dossier, actor: User, until: datetime, reason: str, *,
                    now: datetime) -> AuditEvent:
    """Admin only, with a reason: this dossier alone may be submitted until ``until`` (exclusive);
    an expired draft becomes a draft again. The audit event keeps the deadline before and after."""
    check_transition("extend_deadline", dossier, actor, now, reason)
    campaign_deadline = dossier.campaign.deadline_at
    if until <= now:
        raise InvalidAction("La nouvelle date limite doit être dans le futur.")
    if until <= campaign_deadline:
        raise InvalidAction("La nouvelle date limite doit être postérieure à celle de la campagne "
                            f"({format_date_fr(last_day_before(campaign_deadline))}).")
    before = deadline_of(dossier)
    last_day = format_date_fr(last_day_before(until))
    return apply_transition("extend_deadline", dossier, actor, now, reason, {"last_day": last_day},
                  event_fields={"subject_kind": "dossier", "subject_id": dossier.id,
                                "subject_label": dossier.reference,
                                "before": {"deadline": before.astimezone(UTC).isoformat()},
                                "after": {"deadline": until.astimezone(UTC).isoformat()}},
                  extended_deadline_at=until, closed_at=None)


# --- helpers -----------------------------------------------------------------------------------


def _going_back() -> dict:
    """A dossier sent back before eligibility loses what eligibility froze: its evaluation and
    computed amount are evaluated again when it is declared eligible, and meanwhile its demand on
    the envelope is its requested amount (recomputed at resubmission)."""
    return {"evaluation": None, "computed_amount": None}


def _acknowledge(dossier: Dossier, now: datetime, completed_at: datetime | None = None) -> dict:
    """Issue the acknowledgment of receipt; what its e-mail shows (CRPA L112-3, R112-5)."""
    act = acts.issue_acknowledgment(dossier, received_at=dossier.submitted_at or now,
                                    completed_at=completed_at, now=now)
    context = _letter(act)
    if completed_at is not None:  # the completion's own e-mail goes to the instructor
        notifications.queue("acknowledgment", key=f"dossier:{dossier.id}:act:{act.id}", dossier=dossier,
                            recipients=_recipients(dossier, ("applicants",)),
                            context={"reference": dossier.reference, "state": dossier.state, **context}, now=now)
    return context


def _letter(act) -> dict:
    """The notification's context for an issued act: the act and the mentions its e-mail shows."""
    keys = ("received_on", "completed_on", "implicit_decision_on", "implicit_rejection_months",
            "amount", "amount_in_words", "deliberation", "identity", "recourse_months")
    return {"act": acts.summary(act)} | {k: act.content[k] for k in keys if k in act.content}


def _envelope_of(dossier: Dossier, now: datetime) -> envelopes.Envelope:
    scope = dossier.cap_scope or scope_of(dossier)
    # An eligible dossier froze its scope; a collectivité without an EPCI never becomes eligible.
    assert scope is not None, f"dossier {dossier.id} has no cap scope"
    return envelopes.get_envelope(dossier.campaign, dossier.aid_number, scope, now)


def _grant_packs(dossier: Dossier) -> None:
    """Aid 1: record each pack this dossier uses; the unique key refuses a pack granted twice."""
    packs = (dossier.evaluation or {}).get("packs_granted", [])
    try:
        with db.session.begin_nested():
            for pack in packs:
                db.session.add(PackGrant(campaign_id=dossier.campaign_id, pack=pack,
                                         collectivite_id=dossier.collectivite_id, dossier_id=dossier.id))
    except IntegrityError:
        raise ActionConflict("Un des packs de ce dossier a déjà été attribué à la commune par un "
                             "autre dossier : réexaminez le dossier.") from None
