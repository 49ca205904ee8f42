"""Redis stopped and back: nothing is lost.

A private redis-server (no persistence: what it holds dies with it) is the broker of the app and of
a real worker process. Tasks waiting in Redis when it stops are lost, submissions made while it is
down cannot queue theirs, and the worker loses its connection; once Redis is back, the periodic
re-dispatch (run here as beat would) queues them again and every e-mail goes out exactly once.
"""

from __future__ import annotations

import time
from collections import Counter

from sqlalchemy import select

from instruction import clock
from instruction.dossiers import services
from instruction.dossiers.models import Dossier
from instruction.extensions import db
from instruction.notifications import jobs
from instruction.notifications.models import Delivery, OutboxMessage
from tests import factories
from tests.faults.conftest import WorkerProcess, fault_app, worker_env
from tests.faults.services import PrivateRedis, wait_until

EACH = 5


def _submit(n: int) -> list[int]:
    """``n`` drafts submitted by their applicant, committed (the hook queues their e-mails)."""
    ids = []
    for _ in range(n):
        dossier = factories.dossier("draft")
        db.session.commit()
        services.submit(dossier, factories.applicant_of(dossier.collectivite), now=factories.NOW)
        db.session.commit()
        ids.append(db.session.scalar(select(OutboxMessage.id).where(
            OutboxMessage.dossier_id == dossier.id, OutboxMessage.kind == "submit")))
    return ids


def _sent(message_ids: list[int]) -> bool:
    db.session.rollback()
    statuses = db.session.scalars(select(Delivery.status).where(Delivery.message_id.in_(message_ids))).all()
    return len(statuses) == len(message_ids) and set(statuses) == {"sent"}


def test_redis_stopped_and_back_nothing_is_lost(database_url, sink, tmp_path, monkeypatch):
    redis_server = PrivateRedis().start()
    app = fault_app(database_url, tmp_path, monkeypatch, REDIS_URL=redis_server.url, SMTP_PORT=sink.port,
                    NOTIFICATION_REDISPATCH_AFTER=2)
    worker = WorkerProcess(worker_env(database_url, redis_server.url, sink.port, tmp_path), tmp_path / "worker.log")
    try:
        with app.app_context():
            waiting = _submit(EACH)  # queued in Redis; no worker yet
            assert all(db.session.get(OutboxMessage, m).dispatched_at is not None for m in waiting)
            redis_server.stop()  # …and lost with it
            during = _submit(EACH)  # Redis down: the submissions still succeed
            assert all(db.session.get(OutboxMessage, m).dispatched_at is None for m in during)
            assert all(db.session.get(Dossier, db.session.get(OutboxMessage, m).dossier_id).state == "received"
                       for m in during)

            redis_server.start()  # same port, empty
            worker.start()
            time.sleep(3)  # past NOTIFICATION_REDISPATCH_AFTER for the lost tasks
            assert sink.messages == []  # nothing came by itself: the tasks were lost
            jobs.run_job("dispatch", now=clock.now())  # what beat does every minute
            assert wait_until(lambda: _sent(waiting + during), timeout=60), worker.log.read_text()[-3000:]

            # Redis stops under the running worker, and comes back: the worker reconnects.
            redis_server.stop()
            time.sleep(2)
            redis_server.start()
            after = _submit(EACH)
            assert wait_until(lambda: _sent(after), timeout=90, every=1) or (
                jobs.run_job("dispatch", now=clock.now()) and wait_until(lambda: _sent(after), timeout=60)), \
                worker.log.read_text()[-3000:]
            time.sleep(2)  # nothing more comes
            assert worker.process.poll() is None  # the same worker process throughout
    finally:
        worker.stop()
        redis_server.stop()

    by_message = Counter(int(m["Message-ID"].split(".")[1]) for m in sink.messages)
    assert by_message == Counter({m: 1 for m in waiting + during + after})  # each once, none lost
