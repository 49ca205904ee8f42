"""PostgreSQL restarted during a burst of requests: French 503s while it is down, then the same
application process (gunicorn, its connection pool) answers again without being restarted.

The server is a private PostgreSQL cluster of this test (``services.PrivatePostgres``), never the
shared one.
"""

from __future__ import annotations

import threading
import time

import pytest

from instruction.extensions import db
from tests import factories
from tests.conftest import prepared_app
from tests.faults.services import (
    AppServer,
    PrivatePostgres,
    app_environment,
    fetch,
    logged_in_opener,
    wait_until,
)

BURST_THREADS = 6
PAGES = ("/instruction/", "/", "/notifications/")  # each loads the user and queries the database


@pytest.fixture
def private_postgres():
    server = PrivatePostgres().start()
    yield server
    server.destroy()


@pytest.fixture
def served(private_postgres, tmp_path):
    app = prepared_app(private_postgres.url, tmp_path)
    with app.app_context():
        instructor = factories.user("instructor")
        for _ in range(3):
            factories.dossier("received")
        db.session.commit()
        email = instructor.email
        db.session.remove()
        db.engine.dispose()
    server = AppServer(app_environment(private_postgres.url, tmp_path / "instance"), tmp_path / "gunicorn.log").start()
    yield server, email
    server.stop()


def test_postgresql_restarted_during_a_burst(private_postgres, served):
    server, email = served
    opener = logged_in_opener(server, email, factories.PASSWORD)
    master = server.process.pid
    answers: list[tuple[float, int, str, dict]] = []
    stop = threading.Event()

    def burst(k: int) -> None:
        i = k
        while not stop.is_set():
            answer = fetch(opener, server.base + PAGES[i % len(PAGES)], timeout=60)
            answers.append((time.monotonic(), answer.status, answer.body, answer.headers))
            i += 1

    threads = [threading.Thread(target=burst, args=(k,)) for k in range(BURST_THREADS)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.5)
        private_postgres.stop("fast")  # every pooled connection is cut
        down_at = time.monotonic()
        time.sleep(3)
        private_postgres.start()
        up_at = time.monotonic()
        # Back within seconds, without touching the application.
        assert wait_until(lambda: any(t > up_at and s == 200 for t, s, _, _ in answers[-50:]), timeout=60), \
            server.log.read_text()[-3000:]
        time.sleep(2)
        settled = time.monotonic()
        time.sleep(2)
    finally:
        stop.set()
        for thread in threads:
            thread.join(90)

    statuses = [s for _, s, _, _ in answers]
    assert set(statuses) <= {200, 503}, [(s, b[:300]) for _, s, b, _ in answers if s not in (200, 503)][:5]
    before = [s for t, s, _, _ in answers if t < down_at - 0.2]
    assert before and set(before) == {200}
    outage = [(b, h) for t, s, b, h in answers if s == 503]
    assert len(outage) >= BURST_THREADS  # the burst met the outage
    for body, headers in outage:
        assert "Service momentanément indisponible" in body and 'lang="fr"' in body
        assert headers.get("Retry-After") == "30"
    after = [s for t, s, _, _ in answers if t > settled]
    assert after and set(after) == {200}, "the application did not recover by itself"
    assert server.process.poll() is None and server.process.pid == master  # never restarted
