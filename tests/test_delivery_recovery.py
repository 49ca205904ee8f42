"""Crash recovery of deliveries (issue 13): a worker that dies while sending leaves a claim behind,
and the periodic re-dispatch sends its deliveries again within five minutes, not after the old
10-minute lease and one-hour re-dispatch. Real SMTP sink; the broker replaced by a recorder."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from instruction.accounts.models import User
from instruction.clock import now as utcnow
from instruction.notifications import delivery, dispatch, jobs
from instruction.notifications.models import Delivery
from instruction.notifications.services import queue
from tests import factories
from tests.test_notifications_delivery import SmtpSink


@pytest.fixture
def sink(app, monkeypatch):
    smtp = SmtpSink().start()
    monkeypatch.setitem(app.config, "SMTP_PORT", smtp.port)
    yield smtp
    smtp.stop()


@pytest.fixture
def queued(monkeypatch):
    ids: list[int] = []
    monkeypatch.setattr(dispatch, "enqueue", lambda message_ids: ids.extend(message_ids))
    return ids


class Killed(BaseException):
    """What the worker's death looks like from inside the task: nothing after it runs."""


def three_recipient_message(session):
    users = [factories.user("instructor") for _ in range(3)]
    message = queue("digest", key=f"test:crash:{users[0].id}", recipients=users, context={"new": [], "waiting": [],
                                                                                           "envelopes": []},
                    now=utcnow())
    session.commit()
    return message, users


def test_the_lease_is_within_five_minutes_and_beyond_the_task_time_limit():
    from worker.tasks import deliver_message

    assert delivery.CLAIM_LEASE <= timedelta(minutes=4)  # + one beat tick (1 minute) ≤ 5 minutes
    assert delivery.CLAIM_LEASE.total_seconds() > deliver_message.time_limit


def test_a_worker_killed_while_sending_is_recovered_within_five_minutes(app, session, sink, queued, monkeypatch):
    message, users = three_recipient_message(session)
    t0 = utcnow()
    real_send = delivery.Relay.send
    calls = {"n": 0}

    def dies_on_the_second(self, email):
        calls["n"] += 1
        if calls["n"] == 2:
            raise Killed()
        return real_send(self, email)

    monkeypatch.setattr(delivery.Relay, "send", dies_on_the_second)
    with pytest.raises(Killed):
        delivery.deliver_message(message.id, now=t0)
    session.rollback()  # the process is gone: whatever it had not committed is lost
    monkeypatch.setattr(delivery.Relay, "send", real_send)
    assert len(sink.messages) == 1

    rows = session.scalars(select(Delivery).where(Delivery.message_id == message.id).order_by(Delivery.id)).all()
    # The first e-mail's success was committed with the claim of the second: nothing in between.
    assert [r.status for r in rows] == ["sent", "pending", "pending"]
    assert rows[0].claimed_at is None and rows[1].claimed_at is not None and rows[2].claimed_at is None

    # One minute later the claim still holds: no second task for a worker that may be alive.
    assert jobs.dispatch_pending(t0 + timedelta(minutes=1)) == "Aucun message en attente"
    # Past the lease, the next beat tick queues the message again, though it was dispatched recently.
    recovery = t0 + delivery.CLAIM_LEASE + timedelta(seconds=1)
    assert recovery - t0 < timedelta(minutes=5)
    assert jobs.dispatch_pending(recovery) == "1 message(s) remis en file"
    assert queued == [message.id]
    outcome = delivery.deliver_message(message.id, now=recovery)
    assert outcome.sent == 2
    assert sorted(m["To"] for m in sink.messages) == sorted(u.email for u in users)  # each exactly once
    session.expire_all()
    assert {r.status for r in session.scalars(select(Delivery).where(Delivery.message_id == message.id))} == {"sent"}


def test_a_retry_waiting_for_its_time_is_not_taken_for_a_dead_worker(app, session, queued, monkeypatch):
    """A failed attempt clears its claim: the re-dispatch leaves the retry to its own task."""
    from tests.test_notifications_delivery import free_port

    monkeypatch.setitem(app.config, "SMTP_PORT", free_port())  # the relay refuses connections
    monkeypatch.setitem(app.config, "NOTIFICATION_RETRY_DELAY", 600)
    message, _ = three_recipient_message(session)
    t0 = utcnow()
    outcome = delivery.deliver_message(message.id, now=t0)
    assert outcome.retry_at is not None
    rows = session.scalars(select(Delivery).where(Delivery.message_id == message.id)).all()
    assert all(r.claimed_at is None for r in rows)
    assert jobs.dispatch_pending(t0 + timedelta(minutes=5)) == "Aucun message en attente"
    assert session.scalar(select(User).limit(1)) is not None


def test_a_retry_beyond_a_minute_is_left_to_the_redispatch_when_due(app, session, queued, monkeypatch):
    """No task waits ten minutes unacknowledged in a worker (it would outlive the broker's visibility
    timeout): the task does not retry itself; the re-dispatch queues the message once due, not before."""
    from tests.test_notifications_delivery import free_port

    monkeypatch.setitem(app.config, "SMTP_PORT", free_port())
    monkeypatch.setitem(app.config, "NOTIFICATION_RETRY_DELAY", 600)
    message, _ = three_recipient_message(session)
    t0 = utcnow()
    outcome = delivery.deliver_message(message.id, now=t0)
    assert outcome.retry_at == t0 + timedelta(seconds=600)
    assert outcome.task_retry_at is None  # the task does not retry itself
    session.refresh(message)
    assert message.dispatched_at is None
    assert jobs.dispatch_pending(t0 + timedelta(seconds=599)) == "Aucun message en attente"
    assert queued == []
    assert jobs.dispatch_pending(t0 + timedelta(seconds=600)) == "1 message(s) remis en file"
    assert queued == [message.id]


def test_a_retry_within_a_minute_is_the_task_s_own(app, session, queued, monkeypatch):
    from tests.test_notifications_delivery import free_port

    monkeypatch.setitem(app.config, "SMTP_PORT", free_port())
    monkeypatch.setitem(app.config, "NOTIFICATION_RETRY_DELAY", 60)
    message, _ = three_recipient_message(session)
    t0 = utcnow()
    outcome = delivery.deliver_message(message.id, now=t0)
    assert outcome.task_retry_at == outcome.retry_at == t0 + timedelta(seconds=60)
    session.refresh(message)
    assert message.dispatched_at == t0 + timedelta(seconds=60)
    # Its own task comes then: the re-dispatch leaves it alone, even after it is due.
    assert jobs.dispatch_pending(t0 + timedelta(minutes=3)) == "Aucun message en attente"
    assert queued == []


def test_a_message_waiting_in_the_throttled_queue_is_not_queued_again(app, session, queued):
    """A backlog drained at NOTIFICATION_RATE waits in the broker's queue for as long as it takes; the
    re-dispatch cannot tell it from a lost task, so it only queues it again after
    NOTIFICATION_REDISPATCH_AFTER (an hour). A task lost by a dead worker comes back sooner, from the
    broker (visibility timeout, tests/faults/test_worker_killed.py)."""
    assert app.config["NOTIFICATION_REDISPATCH_AFTER"] == 3600
    message, _ = three_recipient_message(session)
    t0 = message.dispatched_at
    for minutes in (1, 5, 30, 59):
        assert jobs.dispatch_pending(t0 + timedelta(minutes=minutes)) == "Aucun message en attente"
    assert queued == []
    assert jobs.dispatch_pending(t0 + timedelta(minutes=60)) == "1 message(s) remis en file"
    assert queued == [message.id]


def test_a_grouped_staff_e_mail_is_not_queued_before_its_hour(app, session, sink, queued):
    """The per-recipient throttle of the thread's e-mails (at most one per dossier and hour): the
    grouped e-mail is not dispatched, and not due, until an hour after the previous one went."""
    from instruction.teamwork import services as team
    from tests.factories import NOW
    from tests.test_teamwork_emails import MAX, world

    dossier, agent, *_ = world(session)
    t0 = NOW + timedelta(hours=1)
    team.post_message(dossier, agent, "Premier message", [], max_bytes=MAX, now=t0)
    session.commit()
    assert jobs.dispatch_pending(t0, deliver=True) == "1 message(s) traité(s), 1 courriel(s) envoyé(s)"
    team.post_message(dossier, agent, "Deuxième message", [], max_bytes=MAX, now=t0 + timedelta(minutes=5))
    session.commit()
    [grouped] = session.scalars(select(Delivery).where(Delivery.status == "pending")).all()
    assert grouped.next_attempt_at == t0 + timedelta(hours=1) and grouped.message.dispatched_at is None
    for minutes in (6, 10, 30, 59):
        assert jobs.dispatch_pending(t0 + timedelta(minutes=minutes)) == "Aucun message en attente"
    assert queued == []
    assert jobs.dispatch_pending(t0 + timedelta(minutes=60)) == "1 message(s) remis en file"
    assert queued == [grouped.message_id]


def test_the_default_configuration_recovers_a_lost_task_within_five_minutes(app, monkeypatch):
    """A task taken but not started by a worker that died comes back from Redis after the visibility
    timeout (plus the 10-second sweep); a live worker never holds one that long."""
    from worker.celery_app import celery_config
    from worker.tasks import deliver_message

    assert app.config["BROKER_VISIBILITY_TIMEOUT"] == 240
    monkeypatch.setitem(app.config, "REDIS_URL", "redis://127.0.0.1:6379/5")
    conf = celery_config(app)
    assert conf["task_acks_late"] is False  # the periodic jobs: never handed to a second worker
    options = conf["broker_transport_options"]
    assert options["visibility_timeout"] == 240
    assert (options["unacked_restore_interval"], options["unacked_restore_throttle"]) == (10, 1)
    assert options["visibility_timeout"] + options["unacked_restore_interval"] < 5 * 60
    held = delivery.TASK_RETRY_MAX.total_seconds() + deliver_message.time_limit
    assert options["visibility_timeout"] >= held + 60  # a minute of margin (rate limit, clock)
    assert deliver_message.acks_late and deliver_message.reject_on_worker_lost
