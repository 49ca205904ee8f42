"""The dossiers' periodic jobs: drafts expire at the deadline, applicants are reminded of it and of
the documents asked of them.

Each takes the instant ``now`` (the tasks pass the real clock, tests a frozen one), is idempotent,
commits per batch, and returns a one-line French summary; the app registers them with the job
runner (``notifications.jobs.run_job``) under the names of the beat schedule.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import String, cast, exists, func, literal, or_, select

from instruction.accounts.services import approved_agents_of
from instruction.campaigns.models import Campaign
from instruction.dossiers import services as dossiers
from instruction.dossiers.models import AuditEvent, Dossier
from instruction.extensions import db
from instruction.notifications.jobs import BATCH, committed_batches
from instruction.notifications.models import OutboxMessage
from instruction.notifications.services import Pending, queue_many
from instruction.rules.formatting import format_date_fr
from instruction.rules.parameters import PARIS, last_day_before, paris_date
from instruction.territory.models import Collectivite

# --- deadline ----------------------------------------------------------------------------------


def expire_drafts(now: datetime) -> str:
    """Drafts of every campaign whose deadline has passed become expired (with their audit events
    and notifications, by the service), BATCH at a time, one commit per batch. A second run
    finds nothing."""
    def due(after: int) -> Sequence[int]:
        return db.session.scalars(
            select(Dossier.id).join(Campaign, Campaign.id == Dossier.campaign_id)
            .where(Dossier.state == "draft", Dossier.discarded_at.is_(None), Campaign.deadline_at <= now,
                   Dossier.id > after,
                   or_(Dossier.extended_deadline_at.is_(None), Dossier.extended_deadline_at <= now))
            .order_by(Dossier.id).limit(BATCH)).all()

    expired = sum(dossiers.expire_many(ids, now=now) for ids in committed_batches(due, id_of=int))
    return f"{expired} brouillon(s) clos à la date limite"


# --- reminders -------------------------------------------------------------------------------


def due_reminder(deadline: datetime, now: datetime, days: tuple[int, ...]) -> int | None:
    """The reminder to send now: the one closest to the deadline whose window has opened
    (J-d opens d days before the deadline, Paris wall clock), or None (too early, or past)."""
    if now >= deadline:
        return None
    local = deadline.astimezone(PARIS)
    opened = [d for d in days if now >= local - timedelta(days=d)]
    return min(opened) if opened else None


def send_reminders(now: datetime) -> str:
    deadline = _deadline_reminders(now)
    documents = _documents_reminders(now)
    return f"{deadline} rappel(s) de date limite, {documents} rappel(s) de pièces"


def _not_queued(prefix: str, id_column):
    """No outbox row has the key ``prefix + id`` yet (the reminder was not sent)."""
    return ~exists().where(OutboxMessage.key == literal(prefix) + cast(id_column, String))


def _deadline_reminders(now: datetime) -> int:
    """Applicants with a draft: a reminder J-30, J-7, J-1 (REMINDER_DAYS), once each. Only the
    latest due one is sent: a draft created on the last day gets J-1, never J-30. BATCH drafts at
    a time, their messages in one INSERT and one commit per batch; drafts already reminded are left
    out by the query, so a second run reads nothing."""
    days = tuple(current_app.config["REMINDER_DAYS"])
    if not days:
        return 0
    count = 0
    campaigns = db.session.scalars(select(Campaign).where(
        Campaign.deadline_at > now, Campaign.deadline_at <= now + timedelta(days=max(days) + 1))).all()
    for campaign in campaigns:
        d = due_reminder(campaign.deadline_at, now, days)
        if d is None:
            continue
        last_day = format_date_fr(last_day_before(campaign.deadline_at))
        prefix = f"reminder:deadline:J-{d}:dossier:"

        def unreminded(after: int, campaign_id: int = campaign.id, prefix: str = prefix) -> Sequence[Any]:
            return db.session.execute(
                select(Dossier.id, Dossier.reference, Dossier.title, Dossier.collectivite_id,
                       Collectivite.name.label("collectivite"))
                .join(Collectivite, Collectivite.id == Dossier.collectivite_id)
                .where(Dossier.campaign_id == campaign_id, Dossier.state == "draft",
                       Dossier.discarded_at.is_(None), Dossier.id > after, _not_queued(prefix, Dossier.id))
                .order_by(Dossier.id).limit(BATCH)).all()

        for drafts in committed_batches(unreminded):
            agents = approved_agents_of(row.collectivite_id for row in drafts)
            count += queue_many("reminder_deadline", [
                Pending(key=f"{prefix}{row.id}", dossier_id=row.id, recipients=agents.get(row.collectivite_id, []),
                        context={"reference": row.reference, "title": row.title, "collectivite": row.collectivite,
                                 "days": d, "last_day": last_day, "campaign": campaign.title})
                for row in drafts], now=now)
    return count


def _documents_reminders(now: datetime) -> int:
    """Applicants asked for documents who have not answered after DOCUMENTS_REMINDER_DAYS: one
    reminder per request, BATCH at a time like the deadline reminders."""
    cutoff = now - timedelta(days=current_app.config["DOCUMENTS_REMINDER_DAYS"])
    latest = (select(AuditEvent.dossier_id, func.max(AuditEvent.id).label("event_id"))
              .where(AuditEvent.action == "request_documents").group_by(AuditEvent.dossier_id).subquery())
    prefix, count = "reminder:documents:event:", 0

    def unreminded(after: int) -> Sequence[Any]:
        return db.session.execute(
            select(Dossier.id, Dossier.reference, Dossier.title, Dossier.collectivite_id,
                   Collectivite.name.label("collectivite"), AuditEvent.id.label("event_id"),
                   AuditEvent.reason, AuditEvent.at)
            .join(latest, latest.c.dossier_id == Dossier.id)
            .join(AuditEvent, AuditEvent.id == latest.c.event_id)
            .join(Collectivite, Collectivite.id == Dossier.collectivite_id)
            .where(Dossier.state == "incomplete", AuditEvent.at <= cutoff, Dossier.id > after,
                   _not_queued(prefix, AuditEvent.id))
            .order_by(Dossier.id).limit(BATCH)).all()

    for rows in committed_batches(unreminded):
        agents = approved_agents_of(row.collectivite_id for row in rows)
        count += queue_many("reminder_documents", [
            Pending(key=f"{prefix}{row.event_id}", dossier_id=row.id, recipients=agents.get(row.collectivite_id, []),
                    context={"reference": row.reference, "title": row.title, "collectivite": row.collectivite,
                             "reason": row.reason, "requested_on": format_date_fr(paris_date(row.at))})
            for row in rows], now=now)
    return count
