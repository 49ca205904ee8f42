"""The nightly job of the balance time limit: reminders before it, caducité after it.

Idempotent: a reminder has a unique outbox key per dossier and day count (``queue_many`` skips a
key already there), and a lapsed dossier is no longer granted, so a second run finds nothing to
do. The candidates (granted dossiers whose balance was never asked) are read in one query per
batch; each lapse is one service call (its envelope released, audited, notified) in a savepoint,
one commit per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import exists, select
from sqlalchemy.orm import joinedload

from instruction.accounts.services import approved_agents_of
from instruction.dossiers.jobs import due_reminder
from instruction.dossiers.models import Dossier
from instruction.dossiers.services import ActionConflict
from instruction.extensions import db
from instruction.notifications.jobs import BATCH, committed_batches
from instruction.notifications.services import Pending, queue_many
from instruction.payment_requests import services
from instruction.payment_requests.models import PaymentRequest
from instruction.rules.formatting import format_date_fr, format_euros
from instruction.rules.parameters import paris_date
from instruction.rules.payouts import payment_rules

ZERO = Decimal("0.00")


def balance_deadlines(now: datetime) -> str:
    reminded = lapsed = 0
    balance_asked = exists().where(PaymentRequest.dossier_id == Dossier.id, PaymentRequest.kind == "solde",
                                   PaymentRequest.first_sent_at.is_not(None))

    def balance_never_asked(after: int) -> Sequence[Dossier]:
        return db.session.scalars(
            select(Dossier).where(Dossier.state == "granted", Dossier.decided_at.is_not(None),
                                  Dossier.id > after, ~balance_asked)
            .options(joinedload(Dossier.campaign), joinedload(Dossier.collectivite))
            .order_by(Dossier.id).limit(BATCH)).all()

    for dossiers in committed_batches(balance_never_asked):
        reminders = []
        for dossier in dossiers:
            due = services.balance_due(dossier)
            if due is None:
                continue
            if paris_date(now) > due:
                try:
                    with db.session.begin_nested():
                        services.lapse(dossier, now=now)
                    lapsed += 1
                except ActionConflict:
                    continue
                continue
            days = due_reminder(services.lapses_at(due), now, payment_rules(dossier.decided_at or now).reminder_days)
            if days is not None:
                reminders.append((dossier, days, due))
        if reminders:
            agents = approved_agents_of(d.collectivite_id for d, _, _ in reminders)
            reminded += queue_many("reminder_balance", [
                Pending(key=f"reminder:balance:J-{days}:dossier:{d.id}", dossier_id=d.id,
                        recipients=agents.get(d.collectivite_id, []),
                        context={"reference": d.reference, "title": d.title, "collectivite": d.collectivite.name,
                                 "days": days, "last_day": format_date_fr(due),
                                 "granted_amount": format_euros(d.granted_amount or ZERO),
                                 "paid": format_euros(d.paid_amount or ZERO)})
                for d, days, due in reminders], now=now)
    return f"{reminded} rappel(s) avant la date limite du solde, {lapsed} subvention(s) caduque(s)"
