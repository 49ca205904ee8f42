"""Fixtures of the fault tests: a database of their own, an SMTP sink, worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from instruction.extensions import db
from tests.conftest import make_test_app, prepared_app, sibling_database_url
from tests.faults.services import PROJECT_ROOT
from tests.test_notifications_delivery import SmtpSink

BASE_URL = "https://aides.example"


@pytest.fixture(scope="module")
def database_url(tmp_path_factory):
    """A database of the module's own on the shared server (which no fault test restarts)."""
    url = sibling_database_url("faults")
    app = prepared_app(url, tmp_path_factory.mktemp("faults-db"))
    with app.app_context():
        db.engine.dispose()
    return url


@pytest.fixture
def sink():
    smtp = SmtpSink().start()
    yield smtp
    smtp.stop()


def fault_app(database_url: str, tmp_path: Path, monkeypatch, **overrides):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    config = {"NOTIFICATION_DISPATCH_ON_COMMIT": True, "BASE_URL": BASE_URL, "NOTIFICATION_RETRY_DELAY": 0.5,
              "NOTIFICATION_RATE": "1000/s"}
    config.update(overrides)
    return make_test_app(database_url, tmp_path, **config)


class WorkerProcess:
    """``celery -A worker worker`` as its own process group (so that it can be killed whole), on a
    private Redis (its default queue is the test's own)."""

    def __init__(self, env: dict[str, str], log: Path, concurrency: int = 4):
        self.env, self.log, self.concurrency = env, log, concurrency
        self.process: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        out = self.log.open("a")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "worker", "worker", "--loglevel", "INFO", "--pool", "prefork",
             "--concurrency", str(self.concurrency), "--without-mingle", "--without-gossip",
             "--hostname", f"{uuid.uuid4().hex[:8]}@%h"],
            cwd=PROJECT_ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def kill(self) -> None:
        """SIGKILL to the worker and its pool processes: no shutdown, no acknowledgement."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process = None


def worker_env(database_url: str, redis_url: str, smtp_port: int, tmp_path: Path, **extra) -> dict:
    """The worker's environment: a private Redis (so the default queue is the test's own)."""
    env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL=redis_url, SMTP_HOST="127.0.0.1",
               SMTP_PORT=str(smtp_port), BASE_URL=BASE_URL, SECRET_KEY="test-secret-key",
               INSTANCE_PATH=str(tmp_path / "worker"), NOTIFICATION_RATE="1000/s")
    env.update(extra)
    return env
