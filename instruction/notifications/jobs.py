"""The periodic jobs: re-dispatch, deadline, reminders, digest.

Each takes the instant ``now`` as an argument (the tasks pass the real clock, tests a frozen one),
is idempotent, commits per item, and returns a one-line French summary that ``run_job`` records
in ``JobRun`` for ``instruction worker status``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

from flask import current_app
from sqlalchemy import String, cast, exists, func, literal, or_, select, update
from sqlalchemy.exc import IntegrityError

from instruction import clock
from instruction.accounts.models import User
from instruction.accounts.services import approved_agents_of, approved_agents_query
from instruction.campaigns.models import Campaign
from instruction.dossiers import services as dossiers
from instruction.dossiers.models import AuditEvent, Dossier, DossierMessage, Envelope
from instruction.dossiers.workflow import PENDING_STATES, WAITING_STATES
from instruction.extensions import db
from instruction.notifications import delivery, dispatch
from instruction.notifications.calendar import is_working_day
from instruction.notifications.models import Delivery, JobRun, OutboxMessage
from instruction.notifications.services import Pending, queue, queue_many
from instruction.rules.formatting import format_date_fr, format_euros
from instruction.rules.parameters import PARIS, last_day_before, paris_date
from instruction.teamwork import services as teamwork
from instruction.teamwork.team import concerns
from instruction.territory.models import Collectivite

log = logging.getLogger(__name__)

ENVELOPE_ALERT = Decimal("0.90")  # "nearly exhausted": at least 90 % consumed
BATCH = 500


def run_job(name: str, *, now: datetime, **options) -> str:
    """Run one job at the instant ``now`` and record the run (started, finished, status, summary,
    by the real clock) in ``JobRun``."""
    job = JOBS[name]
    _record(name, started_at=clock.now(), finished_at=None, status="running", summary=None)
    try:
        summary = job(now, **options)
    except Exception as error:
        db.session.rollback()
        _record(name, finished_at=clock.now(), status="error", summary=f"{type(error).__name__}: {error}"[:2000])
        raise
    _record(name, finished_at=clock.now(), status="ok", summary=summary)
    return summary


def _record(name: str, **values) -> None:
    run = db.session.get(JobRun, name)
    if run is None:
        run = JobRun(name=name)
        db.session.add(run)
    for field, value in values.items():
        setattr(run, field, value)
    try:
        db.session.commit()
    except IntegrityError:  # created at the same moment by another run
        db.session.rollback()
        _record(name, **values)


# --- re-dispatch -------------------------------------------------------------------------------


def dispatch_pending(now: datetime, *, deliver: bool = False) -> str:
    """Queue a delivery task for each message with a due delivery whose task is not (or no longer)
    expected: never queued (broker down at commit), left by a worker that died while sending (a
    claim whose lease has passed: at most ``CLAIM_LEASE`` after the crash), or queued longer ago
    than NOTIFICATION_REDISPATCH_AFTER (task lost before it started). ``deliver``: send every due message here, now,
    without a broker (``instruction worker run-jobs --deliver``)."""
    query = select(OutboxMessage.id).where(exists(select(Delivery.id).where(
        Delivery.message_id == OutboxMessage.id, delivery.due(now))))
    if not deliver:
        stale = now - timedelta(seconds=current_app.config["NOTIFICATION_REDISPATCH_AFTER"])
        abandoned = exists(select(Delivery.id).where(Delivery.message_id == OutboxMessage.id,
                                                     delivery.abandoned(now)))
        query = query.where(or_(OutboxMessage.dispatched_at.is_(None), OutboxMessage.dispatched_at <= stale,
                                abandoned))
    ids = db.session.scalars(query.order_by(OutboxMessage.id).limit(BATCH)).all()
    if not ids:
        return "Aucun message en attente"
    if deliver:
        sent = sum(delivery.deliver_message(message_id, now=now).sent for message_id in ids)
        return f"{len(ids)} message(s) traité(s), {sent} courriel(s) envoyé(s)"
    dispatch.enqueue(ids)  # raises if the broker is down: the run is recorded as an error
    db.session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(ids)).values(dispatched_at=now))
    db.session.commit()
    return f"{len(ids)} message(s) remis en file"


# --- deadline ----------------------------------------------------------------------------------


def expire_drafts(now: datetime) -> str:
    """Drafts of every campaign whose deadline has passed become expired (with their audit events
    and notifications, by the service), BATCH at a time, one commit per batch. A second run
    finds nothing."""
    expired, after = 0, 0
    while True:
        ids = db.session.scalars(
            select(Dossier.id).join(Campaign, Campaign.id == Dossier.campaign_id)
            .where(Dossier.state == "draft", Dossier.discarded_at.is_(None), Campaign.deadline_at <= now,
                   Dossier.id > after,
                   or_(Dossier.extended_deadline_at.is_(None), Dossier.extended_deadline_at <= now))
            .order_by(Dossier.id).limit(BATCH)
        ).all()
        if not ids:
            break
        after = ids[-1]
        expired += dossiers.expire_many(ids, now=now)
        db.session.commit()
    return f"{expired} brouillon(s) clos à la date limite"


# --- reminders ---------------------------------------------------------------------------------


def applicants(collectivite_id: int) -> list[User]:
    return list(db.session.scalars(approved_agents_query(collectivite_id)))


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


def _queue_once(kind: str, key: str, **kw) -> bool:
    """Queue and commit one message; False if its key already exists (sent before)."""
    if db.session.scalar(select(OutboxMessage.id).where(OutboxMessage.key == key)) is not None:
        return False
    try:
        message = queue(kind, key=key, **kw)
        db.session.commit()
    except IntegrityError:  # the same key queued at the same moment by another run
        db.session.rollback()
        return False
    return message is not None


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
        prefix, title, after = f"reminder:deadline:J-{d}:dossier:", campaign.title, 0
        while True:
            drafts = db.session.execute(
                select(Dossier.id, Dossier.reference, Dossier.title, Dossier.collectivite_id,
                       Collectivite.name.label("collectivite"))
                .join(Collectivite, Collectivite.id == Dossier.collectivite_id)
                .where(Dossier.campaign_id == campaign.id, Dossier.state == "draft",
                       Dossier.discarded_at.is_(None), Dossier.id > after, _not_queued(prefix, Dossier.id))
                .order_by(Dossier.id).limit(BATCH)).all()
            if not drafts:
                break
            after = drafts[-1].id
            agents = approved_agents_of(row.collectivite_id for row in drafts)
            count += queue_many("reminder_deadline", [
                Pending(key=f"{prefix}{row.id}", dossier_id=row.id, recipients=agents.get(row.collectivite_id, []),
                        context={"reference": row.reference, "title": row.title, "collectivite": row.collectivite,
                                 "days": d, "last_day": last_day, "campaign": title})
                for row in drafts])
            db.session.commit()
    return count


def _documents_reminders(now: datetime) -> int:
    """Applicants asked for documents who have not answered after DOCUMENTS_REMINDER_DAYS: one
    reminder per request, BATCH at a time like the deadline reminders."""
    cutoff = now - timedelta(days=current_app.config["DOCUMENTS_REMINDER_DAYS"])
    latest = (select(AuditEvent.dossier_id, func.max(AuditEvent.id).label("event_id"))
              .where(AuditEvent.action == "request_documents").group_by(AuditEvent.dossier_id).subquery())
    prefix, count, after = "reminder:documents:event:", 0, 0
    while True:
        rows = db.session.execute(
            select(Dossier.id, Dossier.reference, Dossier.title, Dossier.collectivite_id,
                   Collectivite.name.label("collectivite"), AuditEvent.id.label("event_id"),
                   AuditEvent.reason, AuditEvent.at)
            .join(latest, latest.c.dossier_id == Dossier.id)
            .join(AuditEvent, AuditEvent.id == latest.c.event_id)
            .join(Collectivite, Collectivite.id == Dossier.collectivite_id)
            .where(Dossier.state == "incomplete", AuditEvent.at <= cutoff, Dossier.id > after,
                   _not_queued(prefix, AuditEvent.id))
            .order_by(Dossier.id).limit(BATCH)).all()
        if not rows:
            break
        after = rows[-1].id
        agents = approved_agents_of(row.collectivite_id for row in rows)
        count += queue_many("reminder_documents", [
            Pending(key=f"{prefix}{row.event_id}", dossier_id=row.id, recipients=agents.get(row.collectivite_id, []),
                    context={"reference": row.reference, "title": row.title, "collectivite": row.collectivite,
                             "reason": row.reason, "requested_on": format_date_fr(paris_date(row.at))})
            for row in rows])
        db.session.commit()
    return count


# --- digest ------------------------------------------------------------------------------------


def send_digests(now: datetime) -> str:
    """Each instructor's daily digest, on working days, when there is something to say: dossiers
    received since their last digest, dossiers assigned to them waiting for them, open dossiers
    whose implicit rejection comes within ``IMPLICIT_DECISION_ALERT_DAYS`` (15), envelopes at
    least 90 % consumed. One per instructor and day (key ``digest:<user id>:<date>``)."""
    today = paris_date(now)
    if not is_working_day(today):
        return f"{format_date_fr(today)} : jour non ouvré, pas de synthèse"
    envelopes = _envelopes_nearly_exhausted()
    horizon = today + timedelta(days=current_app.config.get("IMPLICIT_DECISION_ALERT_DAYS", 15))
    implicit = []
    for d in db.session.scalars(select(Dossier).where(
            Dossier.state.in_(PENDING_STATES),
            Dossier.implicit_decision_on >= today, Dossier.implicit_decision_on <= horizon)
            .order_by(Dossier.implicit_decision_on, Dossier.id).limit(50)):
        assert d.implicit_decision_on is not None  # within the range above
        implicit.append({"id": d.id, "reference": d.reference, "title": d.title, "state": d.state_label,
                         "collectivite": d.collectivite.name, "on": format_date_fr(d.implicit_decision_on)})
    sent = 0
    instructors = db.session.scalars(select(User).where(
        User.role == "instructor", User.active.is_(True)).order_by(User.id)).all()
    for instructor in instructors:
        key = f"digest:{instructor.id}:{today.isoformat()}"
        if db.session.scalar(select(OutboxMessage.id).where(OutboxMessage.key == key)) is not None:
            continue
        since = _last_digest_until(instructor.id) or _previous_working_day(now)
        new = _dossier_rows(select(Dossier).where(
            Dossier.submitted_at > since, Dossier.submitted_at <= now))
        waiting = _dossier_rows(select(Dossier).where(
            Dossier.assigned_to_id == instructor.id, Dossier.state.in_(WAITING_STATES)))
        messages = _digest_messages(instructor, since, now)
        if not (new or waiting or implicit or envelopes or messages):
            continue
        sent += _queue_once("digest", key, recipients=[instructor], context={
            "full_name": instructor.full_name, "date": format_date_fr(today), "until": now.isoformat(),
            "new": new, "waiting": waiting, "implicit": implicit,
            "implicit_days": (horizon - today).days, "envelopes": envelopes, "messages": messages})
    return f"{sent} synthèse(s) envoyée(s)"


def _digest_messages(instructor: User, since: datetime, now: datetime) -> list[dict]:
    """For an instructor who chose the digest: the applicants' messages of the period on the
    dossiers of their team, counted per dossier."""
    if teamwork.preference(instructor) != "digest":
        return []
    rows = db.session.execute(
        select(Dossier.id, Dossier.reference, Dossier.title, Collectivite.name, func.count(DossierMessage.id))
        .join(DossierMessage, DossierMessage.dossier_id == Dossier.id)
        .join(Collectivite, Collectivite.id == Dossier.collectivite_id)
        .where(DossierMessage.from_staff.is_(False), DossierMessage.created_at > since,
               DossierMessage.created_at <= now, concerns(instructor.id))
        .group_by(Dossier.id, Dossier.reference, Dossier.title, Collectivite.name)
        .order_by(Dossier.id).limit(50)).all()
    return [{"id": id_, "reference": reference, "title": title, "collectivite": name, "count": count}
            for id_, reference, title, name, count in rows]


def _previous_working_day(now: datetime) -> datetime:
    """The same time on the previous working day: a first digest on Monday covers the weekend."""
    since = now - timedelta(days=1)
    while not is_working_day(paris_date(since)):
        since -= timedelta(days=1)
    return since


def _last_digest_until(user_id: int) -> datetime | None:
    context = db.session.scalar(
        select(OutboxMessage.context).join(Delivery, Delivery.message_id == OutboxMessage.id)
        .where(OutboxMessage.kind == "digest", Delivery.user_id == user_id)
        .order_by(OutboxMessage.id.desc()).limit(1))
    return datetime.fromisoformat(context["until"]) if context and context.get("until") else None


def _dossier_rows(query) -> list[dict]:
    return [
        {"id": d.id, "reference": d.reference, "title": d.title, "state": d.state_label,
         "collectivite": d.collectivite.name}
        for d in db.session.scalars(query.order_by(Dossier.submitted_at, Dossier.id).limit(50))
    ]


def _envelopes_nearly_exhausted() -> list[dict]:
    rows = db.session.scalars(select(Envelope).where(
        Envelope.cap_limit > 0, Envelope.consumed >= Envelope.cap_limit * ENVELOPE_ALERT
    ).order_by(Envelope.campaign_id, Envelope.aid_number, Envelope.scope)).all()
    result = []
    for envelope in rows:
        code = envelope.scope.partition(":")[2]
        name = db.session.scalar(select(Collectivite.name).where(
            or_(Collectivite.insee == code, Collectivite.siren == code)).limit(1))
        percent = int(envelope.consumed * 100 / envelope.cap_limit)
        result.append({"aid": envelope.aid_number, "scope": name or envelope.scope,
                       "consumed": format_euros(envelope.consumed),
                       "cap": format_euros(envelope.cap_limit), "percent": percent})
    return result


def render_acts(now: datetime) -> str:
    """Render the PDF of the legal acts issued since the last run (each once, see instruction/acts)."""
    from instruction.acts.services import render_pending

    return f"{render_pending(now=now)} acte(s) mis en forme"


def purge_documents(now: datetime) -> str:
    """Files of dossiers closed longer than DOCUMENT_RETENTION_DAYS (``documents.retention``)."""
    from instruction.documents.retention import purge_closed_dossier_files

    return purge_closed_dossier_files(now, retention_days=current_app.config["DOCUMENT_RETENTION_DAYS"])


JOBS: dict[str, Callable[[datetime], str]] = {
    "deadline": expire_drafts,
    "reminders": send_reminders,
    "digest": send_digests,
    "dispatch": dispatch_pending,
    "acts": render_acts,
    "purge_documents": purge_documents,
}
