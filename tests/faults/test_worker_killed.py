"""The worker killed with SIGKILL while it delivers a few hundred notifications: each is
delivered, by a new worker, and an e-mail is sent twice only in the window docs/worker.md names
(accepted by the relay, not yet recorded as sent: a delivery still claimed at the crash).

Counted by a real SMTP server (the sink); the worker is a real ``celery worker`` process group on a
private Redis; the periodic re-dispatch (beat's ``dispatch_pending``) is run by the test.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
from sqlalchemy import func, select

from instruction import clock
from instruction.extensions import db
from instruction.notifications import delivery, jobs
from instruction.notifications.models import Delivery, OutboxMessage
from instruction.notifications.services import queue
from tests import factories
from tests.faults.conftest import WorkerProcess, fault_app, worker_env
from tests.faults.services import PrivateRedis, wait_until

MESSAGES = 300
CONCURRENCY = 4


@pytest.fixture
def private_redis():
    server = PrivateRedis().start()
    yield server
    server.stop()


def _count(*where) -> int:
    db.session.rollback()  # a fresh look at what the worker committed
    return db.session.scalar(select(func.count(Delivery.id)).where(*where)) or 0


def test_worker_killed_while_delivering(database_url, private_redis, sink, tmp_path, monkeypatch):
    # A task the killed worker had taken but not started waits NOTIFICATION_REDISPATCH_AFTER (one hour
    # by default, docs/worker.md) or Redis's visibility timeout: a minute here.
    app = fault_app(database_url, tmp_path, monkeypatch, REDIS_URL=private_redis.url, SMTP_PORT=sink.port,
                    NOTIFICATION_REDISPATCH_AFTER=60)
    env = worker_env(database_url, private_redis.url, sink.port, tmp_path)
    first = WorkerProcess(env, tmp_path / "worker-1.log", CONCURRENCY)
    second = WorkerProcess(env, tmp_path / "worker-2.log", CONCURRENCY)
    with app.app_context():
        dossier = factories.dossier("received")
        applicants = [factories.user("applicant", collectivite=dossier.collectivite) for _ in range(10)]
        db.session.commit()
        submitted = db.session.scalar(select(OutboxMessage).where(OutboxMessage.dossier_id == dossier.id,
                                                                  OutboxMessage.kind == "submit"))
        for i in range(MESSAGES):  # the e-mail of the real submission, to many recipients
            queue("submit", key=f"fault-kill-{dossier.id}-{i}", recipients=[applicants[i % 10]], dossier=dossier,
                  context=dict(submitted.context))
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

            second.start()

            def all_sent() -> bool:
                jobs.run_job("dispatch", now=clock.now())  # what beat does every minute
                return _count(mine, Delivery.status == "sent") == MESSAGES

            lease = delivery.CLAIM_LEASE.total_seconds()
            assert wait_until(all_sent, timeout=lease + 120, every=2), (
                f"{_count(mine, Delivery.status == 'sent')}/{MESSAGES} sent\n" + second.log.read_text()[-3000:])
            recovered_in = (clock.now() - killed_at).total_seconds()
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
