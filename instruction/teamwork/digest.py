"""The instructors' daily digest: dossiers received, dossiers waiting for them, implicit decisions
coming, envelopes nearly exhausted, and (for who chose it) the applicants' messages of the day.

A periodic job like the dossiers' (``now`` given, idempotent, a French summary), registered with
the job runner (``notifications.jobs.run_job``) as ``digest``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from flask import current_app
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from instruction.accounts.models import User
from instruction.dossiers.models import Dossier, DossierMessage, Envelope
from instruction.dossiers.team import concerns
from instruction.dossiers.workflow import PENDING_STATES, WAITING_STATES
from instruction.extensions import db
from instruction.notifications.calendar import is_working_day
from instruction.notifications.models import Delivery, OutboxMessage
from instruction.notifications.services import queue
from instruction.rules.formatting import format_date_fr, format_euros
from instruction.rules.parameters import paris_date
from instruction.teamwork import services as teamwork
from instruction.territory.models import Collectivite

ENVELOPE_ALERT = Decimal("0.90")  # "nearly exhausted": at least 90 % consumed


def _queue_once(kind: str, key: str, *, now: datetime, **kw) -> bool:
    """Queue and commit one message; False if its key already exists (sent before)."""
    if db.session.scalar(select(OutboxMessage.id).where(OutboxMessage.key == key)) is not None:
        return False
    try:
        message = queue(kind, key=key, now=now, **kw)
        db.session.commit()
    except IntegrityError:  # the same key queued at the same moment by another run
        db.session.rollback()
        return False
    return message is not None


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
            "implicit_days": (horizon - today).days, "envelopes": envelopes, "messages": messages},
            now=now)
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
