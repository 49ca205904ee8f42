"""The worker killed with SIGKILL while it delivers a few hundred notifications: each is
delivered, by a new worker, and an e-mail is sent twice only in the window docs/worker.md names
(accepted by the relay, not yet recorded as sent: a delivery still claimed at the crash). The tasks
it had taken but not started (waiting for the rate limit) come back from Redis after the visibility
timeout, not after NOTIFICATION_REDISPATCH_AFTER; a backlog waiting for the rate limit is never
queued twice.

Counted by a real SMTP server (the sink); the worker is a real ``celery worker`` process group on a
private Redis; the periodic re-dispatch (beat's ``dispatch_pending``) is run by the test.
"""

from __future__ import annotations

import ast
import json
import re
import time
from collections import Counter

import pytest
import redis
from sqlalchemy import func, select

from instruction import clock
from instruction.extensions import db
from instruction.notifications import delivery, jobs
from instruction.notifications.models import Delivery, OutboxMessage
from instruction.notifications.services import queue
from tests import factories
from tests.faults.conftest import WorkerProcess, fault_app, worker_env
from tests.faults.services import PrivateRedis, wait_until
from worker.celery_app import DELIVER_TASK

MESSAGES = 300
CONCURRENCY = 4
# The default is 240 seconds (within five minutes with the 10-second sweep); shorter here, so that
# the test is quick. Still above what a live worker holds a task here (well under a second).
VISIBILITY = 30
SWEEP = 10  # kombu's restore sweep (worker/celery_app.py)


@pytest.fixture
def private_redis():
    server = PrivateRedis().start()
    yield server
    server.stop()


def _count(*where) -> int:
    db.session.rollback()  # a fresh look at what the worker committed
    return db.session.scalar(select(func.count(Delivery.id)).where(*where)) or 0


def taken_by_a_worker(redis_url: str) -> set[int]:
    """The outbox messages whose delivery task a worker took and never acknowledged (kombu's
    ``unacked`` hash: [message, exchange, routing key])."""
    client = redis.Redis.from_url(redis_url)
    try:
        taken = set()
        for raw in client.hvals("unacked"):
            message = json.loads(raw)[0]
            if message["headers"]["task"] == DELIVER_TASK:
                [message_id] = ast.literal_eval(message["headers"]["argsrepr"])
                taken.add(message_id)
        return taken
    finally:
        client.close()


def test_worker_killed_while_delivering(database_url, private_redis, sink, tmp_path, monkeypatch):
    app = fault_app(database_url, tmp_path, monkeypatch, REDIS_URL=private_redis.url, SMTP_PORT=sink.port)
    assert app.config["NOTIFICATION_REDISPATCH_AFTER"] == 3600  # the default: no help from there
    env = worker_env(database_url, private_redis.url, sink.port, tmp_path,
                     BROKER_VISIBILITY_TIMEOUT=str(VISIBILITY))
    # The first worker is throttled (10 e-mails a second): of the four tasks it takes at a time,
    # the rate limit holds some, taken but not started, when it is killed.
    first = WorkerProcess(dict(env, NOTIFICATION_RATE="10/s"), tmp_path / "worker-1.log", CONCURRENCY)
    second = WorkerProcess(env, tmp_path / "worker-2.log", CONCURRENCY)
    with app.app_context():
        dossier = factories.dossier("received")
        applicants = [factories.user("applicant", collectivite=dossier.collectivite) for _ in range(10)]
        db.session.commit()
        submitted = db.session.scalar(select(OutboxMessage).where(OutboxMessage.dossier_id == dossier.id,
                                                                  OutboxMessage.kind == "submit"))
        for i in range(MESSAGES):  # the e-mail of the real submission, to many recipients
            queue("submit", key=f"fault-kill-{dossier.id}-{i}", recipients=[applicants[i % 10]], dossier=dossier,
                  context=dict(submitted.context), now=clock.now())
        db.session.commit()  # the after-commit hook queues one task per message on the private Redis
        ids = set(db.session.scalars(select(Delivery.id).join(Delivery.message)
                                     .where(OutboxMessage.key.like(f"fault-kill-{dossier.id}-%"))))
        assert len(ids) == MESSAGES
        mine = Delivery.id.in_(ids)
        try:
            first.start()
            assert wait_until(lambda: len(sink.messages) >= MESSAGES // 5, timeout=120, every=0.02), \
                first.log.read_text()[-3000:]
            first.kill()
            killed_at = clock.now()
            in_flight = set(db.session.scalars(select(Delivery.id).where(
                mine, Delivery.status == "pending", Delivery.claimed_at.is_not(None))))
            sent_at_kill = len(sink.messages)
            assert sent_at_kill < MESSAGES, "the kill came too late to test anything"
            assert len(in_flight) <= CONCURRENCY  # one claim per pool process
            taken = taken_by_a_worker(private_redis.url)
            db.session.rollback()
            not_started = {m for m in taken if db.session.scalar(select(func.max(Delivery.attempts)).where(
                Delivery.message_id == m)) == 0}
            assert not_started, f"no task taken but not started at the kill: {taken}"
            not_started_ids = set(db.session.scalars(select(Delivery.id).where(Delivery.message_id.in_(not_started))))

            second.start()

            def all_sent() -> bool:
                jobs.run_job("dispatch", now=clock.now())  # what beat does every minute
                return _count(mine, Delivery.status == "sent") == MESSAGES

            lease = delivery.CLAIM_LEASE.total_seconds()
            assert wait_until(all_sent, timeout=lease + 120, every=2), (
                f"{_count(mine, Delivery.status == 'sent')}/{MESSAGES} sent\n" + second.log.read_text()[-3000:])
            recovered_in = (clock.now() - killed_at).total_seconds()
            # The tasks taken but not started came back from Redis, not from the re-dispatch (they
            # were dispatched a minute ago, and hold no claim).
            not_started_sent_in = max((sent_at - killed_at).total_seconds() for sent_at in db.session.scalars(
                select(Delivery.sent_at).where(Delivery.id.in_(not_started_ids))))
            time.sleep(2)  # nothing more comes
        finally:
            first.stop()
            second.stop()

        # Message-ID: <notification.<message id>.<delivery id>.<timestamp>@domain>
        received = Counter(int(m["Message-ID"].split(".")[2]) for m in sink.messages
                           if m["Message-ID"].startswith("<notification."))
        received = Counter({delivery_id: n for delivery_id, n in received.items() if delivery_id in ids})
        assert set(received) == ids  # every notification went out
        twice = {delivery_id for delivery_id, n in received.items() if n > 1}
        assert all(n <= 2 for n in received.values())
        # A duplicate only for a delivery that was claimed, not yet recorded sent, at the crash.
        assert twice <= in_flight, (twice, in_flight)
        assert recovered_in <= lease + 120
        assert VISIBILITY - 5 <= not_started_sent_in <= VISIBILITY + SWEEP + 20, not_started_sent_in


def test_a_throttled_backlog_is_never_queued_twice(database_url, private_redis, sink, tmp_path, monkeypatch):
    """A backlog drained at 4 e-mails a second for ten seconds, with a visibility timeout of five: the
    tasks waiting in the queue are not given out again by Redis (only tasks taken and not
    acknowledged are), and the re-dispatch leaves them alone (NOTIFICATION_REDISPATCH_AFTER)."""
    count = 40
    app = fault_app(database_url, tmp_path, monkeypatch, REDIS_URL=private_redis.url, SMTP_PORT=sink.port)
    env = worker_env(database_url, private_redis.url, sink.port, tmp_path, BROKER_VISIBILITY_TIMEOUT="5",
                     NOTIFICATION_RATE="4/s")
    worker = WorkerProcess(env, tmp_path / "worker.log", CONCURRENCY)
    with app.app_context():
        dossier = factories.dossier("received")
        applicant = factories.user("applicant", collectivite=dossier.collectivite)
        db.session.commit()
        # The factories' submission e-mail is dated (factories.NOW) days ago: the re-dispatch takes
        # it for lost at once; out of the way first.
        assert jobs.run_job("dispatch", now=clock.now()) == "1 message(s) remis en file"
        keys = [f"fault-backlog-{dossier.id}-{i}" for i in range(count)]
        for key in keys:
            queue("submit", key=key, recipients=[applicant], dossier=dossier, now=clock.now())
        db.session.commit()  # forty tasks in the queue
        message_ids = set(db.session.scalars(select(OutboxMessage.id).where(OutboxMessage.key.in_(keys))))
        mine = Delivery.message_id.in_(message_ids)
        summaries = []

        def all_sent() -> bool:
            summaries.append(jobs.run_job("dispatch", now=clock.now()))  # what beat does every minute
            return _count(mine, Delivery.status == "sent") == count

        started = time.monotonic()
        try:
            worker.start()
            assert wait_until(all_sent, timeout=120, every=1), worker.log.read_text()[-3000:]
            drained_in = time.monotonic() - started
            time.sleep(7)  # past another visibility timeout: nothing more comes
        finally:
            worker.stop()
        log = worker.log.read_text()

    assert drained_in > 5 + 3  # the backlog outlived the visibility timeout (and the worker's start)
    assert set(summaries) == {"Aucun message en attente"}  # the re-dispatch queued nothing
    received = Counter(re.findall(rf"Task {re.escape(DELIVER_TASK)}\[([0-9a-f-]+)\] received", log))
    # Each task ran once (forty, and the two of the submission's own e-mail).
    assert len(received) == count + 2 and set(received.values()) == {1}, received
    # Message-ID: <notification.<message id>.<delivery id>.<timestamp>@domain>
    mails = Counter(int(m["Message-ID"].split(".")[1]) for m in sink.messages)
    assert {m: n for m, n in mails.items() if m in message_ids} == {m: 1 for m in message_ids}
