"""The job runner and the notifications' own job, the re-dispatch.

``run_job`` runs a periodic job by name and records the run in ``JobRun`` for ``instruction worker
status``. The jobs are their packages' (``dossiers.jobs``: deadline, reminders; ``teamwork.digest``;
``acts``; ``documents.retention``), given to the runner at start-up. Each takes the instant ``now``
as an argument (the tasks pass the real clock, tests a frozen one), is idempotent, commits per item,
and returns a one-line French summary.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from operator import attrgetter
from typing import TypeVar

from flask import current_app
from sqlalchemy import exists, or_, select, update
from sqlalchemy.exc import IntegrityError

from instruction import clock
from instruction.extensions import db
from instruction.notifications import delivery, dispatch
from instruction.notifications.models import Delivery, JobRun, OutboxMessage

log = logging.getLogger(__name__)

BATCH = 500

Row = TypeVar("Row")


def committed_batches(read: Callable[[int], Sequence[Row]], *, id_of: Callable[[Row], int] = attrgetter("id"),
                      ) -> Iterator[Sequence[Row]]:
    """The rows a job works through, a batch at a time (``read(after)``: the next rows, ordered by
    id, above ``after``; at most BATCH of them), and what the job did with a batch committed
    before the next is read: a run stopped midway keeps what it did, and a long run holds no
    transaction open."""
    after = 0
    while rows := read(after):
        yield rows
        db.session.commit()  # the batch's work
        after = id_of(rows[-1])


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
    than NOTIFICATION_REDISPATCH_AFTER (the last resort for a task lost before it started: on Redis
    such a task comes back within BROKER_VISIBILITY_TIMEOUT, docs/worker.md). ``deliver``: send
    every due message here, now, without a broker (``instruction worker run-jobs --deliver``)."""
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


# name -> job, in the order ``instruction worker run-jobs`` runs them. Each package owns its jobs;
# the app gives them to the runner at start-up (``instruction.register_jobs``), so the runner
# imports none of them.
JOBS: dict[str, Callable[..., str]] = {"dispatch": dispatch_pending}


def install(jobs: dict[str, Callable[..., str]]) -> None:
    """The runner's jobs: these, by name, in this order."""
    JOBS.clear()
    JOBS.update(jobs)
