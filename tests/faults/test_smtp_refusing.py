"""The SMTP relay refusing connections, then accepting: every e-mail goes out once, by a real
worker process, with no intervention (the deliveries' retries with backoff)."""

from __future__ import annotations

import time
from collections import Counter

from sqlalchemy import select

from instruction import clock
from instruction.extensions import db
from instruction.notifications.models import Delivery, OutboxMessage
from instruction.notifications.services import queue
from tests import factories
from tests.faults.conftest import WorkerProcess, fault_app, worker_env
from tests.faults.services import PrivateRedis, wait_until

MESSAGES = 30


def test_smtp_refusing_then_accepting(database_url, sink, tmp_path, monkeypatch):
    redis_server = PrivateRedis().start()
    app = fault_app(database_url, tmp_path, monkeypatch, REDIS_URL=redis_server.url, SMTP_PORT=sink.port)
    worker = WorkerProcess(worker_env(database_url, redis_server.url, sink.port, tmp_path,
                                      NOTIFICATION_RETRY_DELAY="1"), tmp_path / "worker.log")
    sink.stop()  # the relay's port refuses connections
    try:
        with app.app_context():
            dossier = factories.dossier("received")
            applicant = factories.applicant_of(dossier.collectivite)
            db.session.commit()
            submitted = db.session.scalar(select(OutboxMessage).where(
                OutboxMessage.dossier_id == dossier.id, OutboxMessage.kind == "submit"))
            for i in range(MESSAGES):
                queue("submit", key=f"fault-smtp-{dossier.id}-{i}", recipients=[applicant], dossier=dossier,
                      context=dict(submitted.context), now=clock.now())
            db.session.commit()
            mine = select(Delivery).join(Delivery.message).where(
                OutboxMessage.key.like(f"fault-smtp-{dossier.id}-%"))
            worker.start()

            def attempted_twice() -> bool:
                db.session.rollback()
                rows = db.session.scalars(mine).all()
                return all(d.attempts >= 2 and d.status == "pending" for d in rows)

            assert wait_until(attempted_twice, timeout=120, every=0.5), worker.log.read_text()[-3000:]
            rows = db.session.scalars(mine).all()
            assert all("ConnectionRefusedError" in (d.last_error or "") for d in rows)
            sink.start()  # the relay accepts again

            def all_sent() -> bool:
                db.session.rollback()
                return {d.status for d in db.session.scalars(mine)} == {"sent"}

            assert wait_until(all_sent, timeout=180, every=0.5), worker.log.read_text()[-3000:]
            time.sleep(2)
            ids = {d.id for d in db.session.scalars(mine)}
    finally:
        worker.stop()
        redis_server.stop()
    received = Counter(int(m["Message-ID"].split(".")[2]) for m in sink.messages)
    assert {d: n for d, n in received.items() if d in ids} == {d: 1 for d in ids}
