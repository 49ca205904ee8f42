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
                                                                                           "envelopes": []})
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
