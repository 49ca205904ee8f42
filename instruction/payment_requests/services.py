"""Payment requests: the beneficiary's side (start, declare realised expenses with their paid
invoices, attest and send), finance's side (pay what is payable or less with a reason, settle a
balance that justifies nothing more at 0,00 €, or return the request), and the balance time limit.

The amount payable is computed by the pure rule ``instruction.rules.payouts.payable``; paying goes
through ``dossiers.services.record_payment``, so every payment guard applies (the dossier taken,
the one-time token, the date, the mandate reference, the grant, the confirmation of a balance
below the grant and the release of the rest of the envelope). Sending and returning are declared
transitions of ``workflow.TRANSITIONS`` (the state stays): audited and notified like the others.
Services flush, never commit.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from instruction.accounts.models import User
from instruction.acts.services import acts_rules
from instruction.documents import services as documents
from instruction.dossiers import services as dossier_services
from instruction.dossiers.models import Document, Dossier, OperationToken
from instruction.dossiers.services import (
    ActionConflict,
    ActionForbidden,
    AlreadyDone,
    InvalidAction,
)
from instruction.extensions import db
from instruction.payment_requests.models import (
    ATTESTATION,
    KIND_LABELS,
    KINDS,
    PaymentRequest,
    RealisedExpense,
)
from instruction.portal.services import expense_line_values as expense_values
from instruction.portal.services import rules_at
from instruction.rules import ExpenseLine
from instruction.rules.formatting import format_date_fr, format_euros
from instruction.rules.parameters import paris_date
from instruction.rules.payouts import Claim, Payable, balance_due_on, payable, payment_rules

CENT = Decimal("0.01")


# --- the balance time limit --------------------------------------------------------------------


def balance_due(dossier: Dossier) -> date | None:
    """The last day (Europe/Paris) to ask for the balance: the campaign's ``payment_request_months``
    after the grant decision, as the grant letter states it. None before a grant."""
    if dossier.decided_at is None:
        return None
    months = acts_rules(dossier, dossier.decided_at).payment_request_months
    return balance_due_on(paris_date(dossier.decided_at), months)


def balance_asked(dossier: Dossier) -> bool:
    """A balance request was sent (in time, since it could be sent only then)."""
    return db.session.scalar(select(PaymentRequest.id).where(
        PaymentRequest.dossier_id == dossier.id, PaymentRequest.kind == "solde",
        PaymentRequest.first_sent_at.is_not(None)).limit(1)) is not None


def _check_time_limit(dossier: Dossier, now: datetime) -> None:
    due = balance_due(dossier)
    if due is not None and paris_date(now) > due:
        raise ActionConflict(f"Le délai pour demander le versement a expiré le {format_date_fr(due)} : la "
                             f"subvention est caduque pour ce qui n'a pas été demandé.")


# --- reading -----------------------------------------------------------------------------------


def requests_of(dossier: Dossier) -> list[PaymentRequest]:
    return list(db.session.scalars(select(PaymentRequest).where(PaymentRequest.dossier_id == dossier.id)
                                   .order_by(PaymentRequest.id)))


def open_request(dossier: Dossier) -> PaymentRequest | None:
    return db.session.scalar(select(PaymentRequest).where(PaymentRequest.dossier_id == dossier.id,
                                                          PaymentRequest.status != "paid"))


def assess(request: PaymentRequest) -> Payable:
    """What the request justifies now (the dossier's payments as they stand), with the findings:
    the aid's rules of the submission, the payment rules of the grant decision."""
    dossier = request.dossier
    submitted = dossier.submitted_at or dossier.decided_at or request.created_at
    aid = rules_at(dossier.campaign, dossier.aid_number, submitted)
    counting = [p for p in dossier.payments if p.cancelled_at is None]
    claim = Claim(
        kind=request.kind,
        lines=tuple(ExpenseLine(category=e.category, amount_ht=e.amount_ht, label=e.label, pack=e.pack,
                                months=e.months) for e in request.expenses),
        granted=dossier.granted_amount or Decimal("0.00"),
        already_paid=dossier.paid_amount or Decimal("0.00"),
        instalments_paid=sum(1 for p in counting if not p.is_final),
        packs_granted=frozenset((dossier.evaluation or {}).get("packs_granted", [])),
    )
    return payable(claim, aid, payment_rules(dossier.decided_at or submitted))


def _findings(result: Payable) -> list[dict]:
    return [{"code": f.code, "ok": f.ok, "blocking": f.blocking, "message": f.message}
            for f in result.findings]


# --- the beneficiary's side --------------------------------------------------------------------


def _require_agent(actor: User | None, dossier: Dossier) -> None:
    if actor is None or actor.role != "applicant":
        raise ActionForbidden("Une demande de versement est faite par un agent de la collectivité bénéficiaire.")
    if actor.collectivite_id != dossier.collectivite_id:
        raise ActionForbidden("Ce dossier n'appartient pas à votre collectivité.")


def _require_granted(dossier: Dossier) -> None:
    if dossier.state != "granted":
        raise ActionConflict(f"Le dossier est au stade « {dossier.state_label} » : aucun versement ne peut "
                             f"y être demandé.")


def _require_editable(request: PaymentRequest) -> None:
    if not request.editable:
        raise ActionConflict(f"Cette demande de versement est « {request.status_label.lower()} » : elle ne "
                             f"peut plus être modifiée.")


def start(dossier: Dossier, actor: User, kind: str, *, now: datetime) -> PaymentRequest:
    """A new request (acompte or solde) of a granted dossier; one open at a time."""
    _require_agent(actor, dossier)
    _require_granted(dossier)
    if kind not in KINDS:
        raise InvalidAction("Choisissez un acompte ou le solde.")
    _check_time_limit(dossier, now)
    if existing := open_request(dossier):
        raise ActionConflict(f"Une demande de versement ({existing.kind_label.lower()}) est déjà en cours sur "
                             f"ce dossier : complétez-la ou attendez son traitement.")
    if kind == "acompte":
        rules = payment_rules(dossier.decided_at or now)
        paid = sum(1 for p in dossier.payments if p.cancelled_at is None and not p.is_final)
        if paid >= rules.instalments_max:
            raise ActionConflict(f"Le nombre maximal d'acomptes ({rules.instalments_max}) est atteint : "
                                 f"demandez le solde.")
    request = PaymentRequest(dossier=dossier, kind=kind, status="draft", created_by=actor, created_at=now)
    # The expenses are cumulative (what was realised since the start of the project): those of the
    # last request paid are taken up, with their invoices; the agent adds the new ones.
    previous = [r for r in requests_of(dossier) if r.status == "paid"]
    if previous:
        request.expenses = [RealisedExpense(category=e.category, label=e.label, amount_ht=e.amount_ht,
                                            pack=e.pack, months=e.months, invoice_id=e.invoice_id)
                            for e in previous[-1].expenses]
    db.session.add(request)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except Exception:  # the unique index of open requests: another agent started one meanwhile
        raise ActionConflict("Une demande de versement vient d'être commencée sur ce dossier : rechargez "
                             "la page.") from None
    return request


def add_expense(request: PaymentRequest, actor: User, *, category: str, label: str, amount_ht: Decimal,
                pack: int | None, months: int | None, invoice: tuple[str | None, bytes], max_bytes: int,
                now: datetime) -> RealisedExpense:
    """A realised expense with its paid invoice: the file passes the same defences as every upload
    (content sniffed, extension, size, name) and is stored in the same transaction."""
    dossier = request.dossier
    _require_agent(actor, dossier)
    _require_granted(dossier)
    _require_editable(request)
    values = expense_values(dossier, now, category=category, label=label, amount_ht=amount_ht,
                            pack=pack, months=months)
    name, data = invoice
    if not data and not name:
        raise InvalidAction("Joignez la facture acquittée de cette dépense (PDF, JPEG ou PNG).")
    try:
        checked = documents.check_file(name, data, max_bytes)
    except documents.UploadRejected as error:
        raise InvalidAction(str(error)) from None
    document = documents.store(dossier, checked, line=None, uploader=actor, now=now)
    expense = RealisedExpense(request=request, invoice=document, **values)
    db.session.add(expense)
    db.session.flush()
    return expense


def remove_expense(request: PaymentRequest, expense_id: int, actor: User, *, now: datetime) -> list[str]:
    """Remove a realised expense and its invoice; returns the storage keys to delete after the commit."""
    _require_agent(actor, request.dossier)
    _require_editable(request)
    expense = next((e for e in request.expenses if e.id == expense_id), None)
    if expense is None:
        raise ActionConflict("Cette dépense a déjà été retirée de la demande.")
    document = db.session.get(Document, expense.invoice_id)
    request.expenses.remove(expense)
    db.session.flush()
    keys = []
    shared = db.session.scalar(select(RealisedExpense.id).where(RealisedExpense.invoice_id == expense.invoice_id)
                               .limit(1))
    if document is not None and shared is None:  # an invoice of a paid request stays
        keys.append(document.storage_key)
        db.session.delete(document)
        db.session.flush()
    return keys


def send(request: PaymentRequest, actor: User, *, attested: bool, now: datetime):
    """Attest on honour and send: the rules compute the payable amount, kept with the findings."""
    dossier = request.dossier
    _require_agent(actor, dossier)
    _require_granted(dossier)
    _require_editable(request)
    if request.first_sent_at is None:
        _check_time_limit(dossier, now)
    if not request.expenses:
        raise InvalidAction("Déclarez au moins une dépense réalisée, avec sa facture acquittée.")
    if not attested:
        raise InvalidAction("Cochez l'attestation sur l'honneur pour envoyer la demande de versement.")
    dossier_services.check_transition("send_payment_request", dossier, actor, now, None)
    result = assess(request)
    if result.refused:
        raise ActionConflict(" ".join(f.message for f in result.findings if f.blocking and not f.ok))
    returned = request.status == "returned"
    request.status = "sent"
    request.sent_at = now
    request.sent_by_id = actor.id
    request.first_sent_at = request.first_sent_at or now
    request.attestation = ATTESTATION
    request.attested_at = now
    request.payable_amount = result.amount
    request.findings = _findings(result)
    db.session.flush()
    what = f"{KIND_LABELS[request.kind]} demandé : {format_euros(request.declared_total)} HT de dépenses " \
           f"réalisées, {format_euros(result.amount)} à verser selon les règles"
    return dossier_services.apply_transition("send_payment_request", dossier, actor, now,
                                   ("Demande corrigée renvoyée. " if returned else "") + what + ".",
                                   {"kind": KIND_LABELS[request.kind].lower(),
                                    "declared": format_euros(request.declared_total),
                                    "payable": format_euros(result.amount)})


# --- finance's side ----------------------------------------------------------------------------


def _take_sent(request: PaymentRequest) -> None:
    """Take the dossier (payments of one dossier one after the other) and read the request again:
    a request paid or returned meanwhile is refused."""
    dossier_services.take(request.dossier)
    db.session.refresh(request)
    if request.status != "sent":
        raise ActionConflict(f"Cette demande de versement a déjà été traitée (« {request.status_label.lower()} ») : "
                             f"rechargez la page.")


def pay(request: PaymentRequest, actor: User, *, amount: Decimal, paid_on: date, reference: str,
        reason: str | None = None, now: datetime, token: str | None = None,
        confirmed_release: Decimal | None = None):
    """Pay the request: the payable amount, or less with a reason. A balance is the final payment
    (below the grant: confirmed with what goes back to the envelope)."""
    dossier = request.dossier
    if actor is None or actor.role not in ("finance", "admin"):
        raise ActionForbidden("Votre rôle ne permet pas cette action sur le dossier.")
    dossier_services.take(dossier)
    if token and db.session.get(OperationToken, token) is not None:
        raise AlreadyDone()  # the same form again (a double click): the first one paid
    _take_sent(request)
    result = assess(request)
    amount = Decimal(amount)
    reason = (reason or "").strip()
    if amount > result.amount:
        raise InvalidAction(f"Le montant ({format_euros(amount)}) dépasse le montant à verser calculé pour "
                            f"cette demande, {format_euros(result.amount)}.")
    if result.amount == 0 and request.kind == "solde":
        raise InvalidAction("Ce solde ne justifie aucun montant à verser : soldez-le à 0,00 €, sans "
                            "versement.")
    if amount < result.amount and not reason:
        raise InvalidAction(f"Vous versez moins que le montant à verser ({format_euros(result.amount)}) : "
                            f"indiquez le motif, il est communiqué au demandeur.")
    note = f"{KIND_LABELS[request.kind].lower()} demandé le {format_date_fr(paris_date(request.sent_at or now))}"
    if amount < result.amount:
        note += f", réduit de {format_euros(result.amount - amount)} : {reason}"
    event = dossier_services.record_payment(
        dossier, actor, amount=amount, paid_on=paid_on, reference=reference, final=request.kind == "solde",
        now=now, token=token, confirmed_release=confirmed_release, note=note)
    payment = max((p for p in dossier.payments if p.cancelled_at is None), key=lambda p: p.id)
    request.status = "paid"
    request.payment = payment
    request.paid_by = actor
    request.reduction_reason = reason or None
    request.payable_amount = result.amount
    request.findings = _findings(result)
    db.session.flush()
    return event


def settle_at_zero(request: PaymentRequest, actor: User, *, now: datetime, token: str | None = None,
                   confirmed_release: Decimal | None = None):
    """Settle a sent balance whose payable amount is 0,00 € (the instalments already paid cover
    every justified euro, or the expenses justify nothing): no money moves, no payment is made;
    the dossier is paid at what was already paid and the rest goes back to the envelope, once
    confirmed with that amount (``dossier_services.record_zero_balance``). Refused for an
    instalment and for a balance with something to pay."""
    dossier = request.dossier
    if actor is None or actor.role not in ("finance", "admin"):
        raise ActionForbidden("Votre rôle ne permet pas cette action sur le dossier.")
    dossier_services.take(dossier)
    if token and db.session.get(OperationToken, token) is not None:
        raise AlreadyDone()  # the same form again (a double click): the first one settled it
    _take_sent(request)
    if request.kind != "solde":
        raise InvalidAction("Seul un solde peut être soldé à 0,00 € : un acompte se verse, ou se renvoie "
                            "au demandeur.")
    result = assess(request)
    if result.amount != 0:
        raise InvalidAction(f"Ce solde justifie {format_euros(result.amount)} à verser : il ne peut pas être "
                            f"soldé à 0,00 €. Versez-le, ou moins avec un motif.")
    note = f"solde demandé le {format_date_fr(paris_date(request.sent_at or now))}, rien de plus n'est justifié"
    event = dossier_services.record_zero_balance(dossier, actor, now=now, token=token,
                                                 confirmed_release=confirmed_release, note=note)
    request.status = "paid"
    request.settled_at = now
    request.paid_by = actor
    request.payable_amount = result.amount
    request.findings = _findings(result)
    db.session.flush()
    return event


def return_to_applicant(request: PaymentRequest, actor: User, message: str, *, now: datetime):
    """Back to the applicant with a message; they correct it and send it again."""
    dossier = request.dossier
    dossier_services.check_transition("return_payment_request", dossier, actor, now, message)
    _take_sent(request)
    request.status = "returned"
    request.returned_at = now
    request.returned_by = actor
    request.return_message = message.strip()
    db.session.flush()
    return dossier_services.apply_transition("return_payment_request", dossier, actor, now, message,
                                   {"kind": KIND_LABELS[request.kind].lower()})


# --- caducité ----------------------------------------------------------------------------------


def lapse(dossier: Dossier, actor: User | None = None, *, now: datetime):
    """The balance was not asked by its last day: the grant lapses (the system's job only). Without
    any payment the dossier is closed (« Expiré ») and its whole grant goes back to the envelope;
    after instalments it is closed at what was paid and the rest goes back. Refused
    (ActionConflict) if not due."""
    dossier_services.take(dossier)
    paid = dossier.paid_amount or Decimal("0.00")
    action = "lapse_after_instalments" if paid > 0 else "lapse"
    dossier_services.check_transition(action, dossier, actor, now, None)
    due = balance_due(dossier)
    if due is None or paris_date(now) <= due or balance_asked(dossier):
        raise ActionConflict("La subvention n'est pas caduque.")
    released = (dossier.granted_amount or Decimal("0.00")) - paid
    dossier_services.envelopes.release(dossier_services._envelope_of(dossier, now), released)
    reason = (f"Subvention caduque : le solde n'a pas été demandé au plus tard le {format_date_fr(due)} ; "
              f"{format_euros(released)} rendus à l'enveloppe")
    fields: dict = {"closed_at": now}
    if action == "lapse_after_instalments":
        fields["paid_amount"] = paid
    return dossier_services.apply_transition(action, dossier, None, now, reason + ".",
                                   {"last_day": format_date_fr(due), "released": format_euros(released),
                                    "paid": format_euros(paid)},
                                   expected=dossier_services._amounts_read(dossier), **fields)


def lapses_at(due: date) -> datetime:
    """The first instant (Paris midnight the day after the last day) the grant is lapsed."""
    from instruction.rules.parameters import PARIS

    return datetime.combine(due + timedelta(days=1), datetime.min.time(), tzinfo=PARIS)
