"""`instruction worker status`, `instruction worker run-jobs` and `instruction serve`'s worker."""

from __future__ import annotations

import subprocess
from datetime import timedelta

from sqlalchemy import select

from instruction.cli import serve_command
from instruction.notifications import jobs
from instruction.notifications.models import Delivery, OutboxMessage
from tests import factories
from tests.factories import NOW


def test_status_shows_backlog_failures_and_last_runs(app, session):
    dossier = factories.dossier("incomplete")  # two messages: submit, request_documents
    first, second = session.scalars(select(Delivery).order_by(Delivery.id)).all()
    first.status, first.attempts, first.last_error = "failed", 8, "SMTPRecipientsRefused: 550 inconnu"
    second.attempts, second.last_error = 2, "ConnectionRefusedError: [Errno 111] Connection refused"
    second.next_attempt_at = NOW + timedelta(minutes=4)
    session.commit()
    jobs.run_job("deadline", now=NOW)

    output = app.test_cli_runner().invoke(args=["worker", "status"]).output

    assert "en attente : 1 (dont 1 en nouvelle tentative après erreur)" in output
    assert "en échec définitif : 1" in output
    assert "SMTPRecipientsRefused: 550 inconnu" in output and "abandonné" in output
    assert "Connection refused" in output and "nouvelle tentative 2026-11-28 11:04:00" in output
    assert "deadline   ok" in output and "reminders  jamais exécutée" in output
    assert dossier.reference not in output  # deliveries, not dossiers


def test_run_jobs_once_with_a_simulated_instant(app, session):
    draft = factories.dossier("draft", campaign_code="pair-2021", now=NOW.replace(year=2021, month=6))
    session.commit()
    runner = app.test_cli_runner()

    before = runner.invoke(args=["worker", "run-jobs", "--job", "deadline", "--now", "2021-12-31T23:59"])
    after = runner.invoke(args=["worker", "run-jobs", "--job", "deadline", "--now", "2022-01-01T00:00"])

    assert before.output == "deadline : 0 brouillon(s) clos à la date limite\n"
    assert after.output == "deadline : 1 brouillon(s) clos à la date limite\n"  # midnight, Paris time
    session.refresh(draft)
    assert draft.state == "expired"


def test_run_jobs_deliver_sends_without_a_broker(app, session, monkeypatch):
    monkeypatch.setitem(app.config, "SMTP_PORT", 9)  # closed: the attempt is recorded
    factories.dossier("received")
    session.commit()
    result = app.test_cli_runner().invoke(args=["worker", "run-jobs", "--deliver", "--now", "2030-01-02T10:00"])
    assert "dispatch : 1 message(s) traité(s), 0 courriel(s) envoyé(s)" in result.output
    assert session.scalar(select(Delivery.attempts)) == 1
    assert session.scalar(select(OutboxMessage.kind)) == "submit"


def test_serve_starts_the_worker_and_beat_and_stops_them(monkeypatch, tmp_path):
    started = []

    class Child:
        pid = 4242
        stopped = False

        def __init__(self, args, **kw):
            started.append((args, kw))

        def poll(self):
            return None

        def terminate(self):
            Child.stopped = True

        def wait(self, timeout=None):
            return 0

    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    monkeypatch.setattr(subprocess, "Popen", Child)
    monkeypatch.setattr("signal.signal", lambda *args: None)
    monkeypatch.setattr("werkzeug.serving.run_simple", lambda *a, **kw: None)

    result = serve_command.main(["--port", "5099"], standalone_mode=False)

    assert result is None and Child.stopped
    [(args, kw)] = started
    assert args[1:6] == ["-m", "celery", "-A", "worker", "worker"] and "--beat" in args
    assert args[args.index("--schedule") + 1] == str(tmp_path / "celerybeat-schedule")
    assert kw == {"start_new_session": True}


def test_retry_failed_gives_one_more_attempt(app, session):
    factories.dossier("received")
    row = session.scalar(select(Delivery))
    row.status, row.attempts, row.next_attempt_at, row.last_error = "failed", 8, None, "SMTPDataError"
    session.commit()
    result = app.test_cli_runner().invoke(args=["worker", "retry-failed"])
    assert result.output.startswith("1 envoi(s) remis en attente")
    session.refresh(row)
    assert row.status == "pending" and row.next_attempt_at is not None
    assert row.message.dispatched_at is None  # picked up by the next re-dispatch
