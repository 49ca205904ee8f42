"""The worker for real: Celery on Redis (DB 5, a queue of its own per test), an SMTP server
(aiosmtpd), a database of its own with committed data, and a frozen clock for the jobs.

One test runs ``celery -A worker worker`` as a separate process; the others run an embedded
worker (``celery.contrib.testing.worker.start_worker``, in threads). Never eager mode.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from celery.schedules import crontab
from sqlalchemy import func, select, text

from instruction import clock
from instruction.dossiers import services
from instruction.dossiers.models import Dossier
from instruction.extensions import db
from instruction.notifications import delivery, jobs
from instruction.notifications.models import Delivery, JobRun, OutboxMessage
from instruction.notifications.services import queue
from instruction.rules.parameters import PARIS
from tests import factories
from tests.conftest import make_test_app, prepared_app, sibling_database_url
from tests.test_notifications_delivery import SmtpSink, free_port, parts
from worker.celery_app import DELIVER_TASK, DISPATCH_TASK, celery_init_app

REDIS_URL = "redis://127.0.0.1:6379/5"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
BASE_URL = "https://aides.example"


@pytest.fixture(scope="module")
def database_url(tmp_path_factory):
    """A database of its own, migrated, with the territory and the campaigns."""
    url = sibling_database_url("worker")
    app = prepared_app(url, tmp_path_factory.mktemp("worker-db"))
    with app.app_context():
        db.engine.dispose()
    return url


@pytest.fixture
def queue_name():
    """A queue of this test's own on Redis DB 5: another run of the suite (another engineer, CI)
    may use the same Redis at the same time, so nothing is flushed and nothing is shared."""
    name = f"test-{uuid.uuid4().hex}"
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as error:
        pytest.fail(f"Redis is not reachable at {REDIS_URL} ({error}): run `make test`, which starts it.")
    yield name
    client.delete(name)
    client.close()


@pytest.fixture
def sink():
    smtp = SmtpSink().start()
    yield smtp
    smtp.stop()


def new_app(database_url, tmp_path, monkeypatch, **overrides):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))  # the embedded broker's folder
    config = {"REDIS_URL": REDIS_URL, "NOTIFICATION_DISPATCH_ON_COMMIT": True, "BASE_URL": BASE_URL,
              "NOTIFICATION_RETRY_DELAY": 0.5, "NOTIFICATION_RATE": "100/s"}
    config.update(overrides)
    return make_test_app(database_url, tmp_path, **config)


@pytest.fixture
def worker_app(database_url, tmp_path, monkeypatch, queue_name, sink):
    """The app on the worker database (emptied of dossiers and messages), Redis and the sink."""
    app = new_app(database_url, tmp_path, monkeypatch, SMTP_PORT=sink.port)
    celery_init_app(app).conf.task_default_queue = queue_name
    with app.app_context():
        db.session.execute(text("TRUNCATE delivery, outbox_message, job_run, dossier, envelope, "
                                "pack_grant CASCADE"))
        db.session.commit()
        yield app
        db.session.remove()
        db.engine.dispose()


@contextmanager
def embedded_worker(app):
    with start_worker(celery_init_app(app), pool="threads", concurrency=2, perform_ping_check=False,
                      loglevel="WARNING", shutdown_timeout=30):
        yield


def wait_until(predicate, timeout: float = 30, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        db.session.rollback()  # a fresh look at what the worker committed
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def statuses(message_id: int) -> list[str]:
    return list(db.session.scalars(select(Delivery.status).where(Delivery.message_id == message_id)))


@dataclass(frozen=True)
class Submitted:
    dossier_id: int
    reference: str
    email: str  # the applicant's
    message_id: int


def submitted_dossier() -> Submitted:
    """A draft submitted by its applicant, committed (the after-commit hook queues the e-mail)."""
    dossier = factories.dossier("draft")
    applicant = factories.applicant_of(dossier.collectivite)
    db.session.commit()
    services.submit(dossier, applicant, now=factories.NOW)
    db.session.commit()
    message_id = db.session.scalar(select(OutboxMessage.id).where(
        OutboxMessage.dossier_id == dossier.id, OutboxMessage.kind == "submit"))
    return Submitted(dossier.id, dossier.reference, applicant.email, message_id)


def assert_french_submission_e_mail(mail, submitted: Submitted):
    assert mail["To"] == submitted.email
    assert mail["Subject"] == f"Dossier {submitted.reference} : dépôt enregistré"
    for content in parts(mail).values():
        assert submitted.reference in content
        assert f"{BASE_URL}/portail/dossiers/{submitted.dossier_id}" in content
        assert "Bonjour" in content and "a bien été déposé" in content


# --- configuration -----------------------------------------------------------------------------


def test_celery_configuration(database_url, tmp_path, monkeypatch):
    app = new_app(database_url, tmp_path, monkeypatch, NOTIFICATION_RATE="42/m")
    celery = celery_init_app(app)
    conf = celery.conf
    assert celery_init_app(app) is celery and app.extensions["celery"] is celery
    assert conf.broker_url == REDIS_URL
    assert (conf.task_serializer, conf.accept_content, conf.task_ignore_result) == ("json", ["json"], True)
    # The periodic jobs are acknowledged when received, the delivery task when done (below).
    assert not conf.task_acks_late and conf.task_time_limit and conf.task_soft_time_limit
    assert conf.timezone == "Europe/Paris"
    assert conf.task_annotations[DELIVER_TASK] == {"rate_limit": "42/m"}
    import worker.tasks  # noqa: F401  (what the worker imports: ``include``)

    assert celery.tasks[DELIVER_TASK].rate_limit == "42/m"  # the relay is throttled
    assert celery.tasks[DELIVER_TASK].acks_late and celery.tasks[DELIVER_TASK].time_limit == 90
    assert celery.tasks[DELIVER_TASK].reject_on_worker_lost
    assert not celery.tasks["worker.send_digests"].acks_late
    assert conf.broker_transport_options["visibility_timeout"] == 240
    schedule = conf.beat_schedule
    assert {entry["task"] for entry in schedule.values()} == {
        "worker.dispatch_pending", "worker.expire_drafts", "worker.send_reminders", "worker.send_digests",
        "worker.verify_audit_chain", "worker.render_acts", "worker.purge_documents", "worker.tend_exports",
        "worker.balance_deadlines"}
    assert schedule["dispatch-pending"]["schedule"] == 60.0
    assert schedule["expire-drafts"]["schedule"] == crontab(minute="*/15")
    assert schedule["digest"]["schedule"] == crontab(minute=0, hour=8, day_of_week="mon-fri")

    embedded = new_app(database_url, tmp_path, monkeypatch, REDIS_URL="")
    conf = celery_init_app(embedded).conf
    assert conf.broker_url == f"sqlite:///{tmp_path / 'instance' / 'celery-broker.sqlite'}"
    assert conf.broker_transport == "worker.broker:Transport"


# --- a real worker process ---------------------------------------------------------------------


def test_a_worker_process_delivers_the_notification_of_a_submission(worker_app, database_url, sink,
                                                                    tmp_path, queue_name):
    env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL=REDIS_URL, SMTP_HOST="127.0.0.1",
               SMTP_PORT=str(sink.port), BASE_URL=BASE_URL, SECRET_KEY="test-secret-key",
               INSTANCE_PATH=str(tmp_path / "process"), NOTIFICATION_RATE="100/s")
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "worker", "worker", "--loglevel", "INFO",
             "--concurrency", "2", "--without-mingle", "--without-gossip", "--queues", queue_name,
             "--hostname", f"{queue_name}@%h"],
            cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        submitted = submitted_dossier()
        assert wait_until(lambda: statuses(submitted.message_id) == ["sent"], timeout=60), \
            log.read_text()[-3000:]
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    [mail] = sink.messages
    assert_french_submission_e_mail(mail, submitted)
    assert "worker.deliver_message" in log.read_text()


# --- nothing is lost if Redis or SMTP is down --------------------------------------------------


def test_redis_down_the_submission_succeeds_and_is_delivered_once_redis_is_back(
        worker_app, database_url, tmp_path, monkeypatch, sink):
    down = new_app(database_url, tmp_path, monkeypatch, SMTP_PORT=sink.port,
                   REDIS_URL=f"redis://127.0.0.1:{free_port()}/5")  # nothing listens there
    with down.app_context():
        submitted = submitted_dossier()  # commits without an error
        message_id = submitted.message_id
        assert db.session.get(Dossier, submitted.dossier_id).state == "received"
        assert db.session.get(OutboxMessage, message_id).dispatched_at is None  # for the re-dispatch
        db.session.remove()
        db.engine.dispose()

    with embedded_worker(worker_app):  # Redis is back (the app that can reach it)
        time.sleep(1)
        assert sink.messages == [] and statuses(message_id) == ["pending"]
        assert jobs.run_job("dispatch", now=clock.now()) == "1 message(s) remis en file"
        assert wait_until(lambda: statuses(message_id) == ["sent"])
    [mail] = sink.messages
    assert_french_submission_e_mail(mail, submitted)
    assert jobs.run_job("dispatch", now=clock.now()) == "Aucun message en attente"


def test_smtp_refusing_connections_is_retried_until_it_accepts(worker_app, sink):
    sink.stop()  # the port is now refused
    with embedded_worker(worker_app):
        submitted = submitted_dossier()
        message_id = submitted.message_id
        row = lambda: db.session.scalar(select(Delivery).where(Delivery.message_id == message_id))  # noqa: E731
        assert wait_until(lambda: row().attempts >= 2)  # failed, retried with backoff, failed again
        assert row().status == "pending" and "ConnectionRefusedError" in row().last_error
        sink.start()
        assert wait_until(lambda: row().status == "sent")
        assert row().attempts >= 2 and row().last_error is None
        time.sleep(1)  # nothing else comes
    [mail] = sink.messages
    assert_french_submission_e_mail(mail, submitted)


def test_the_same_row_delivered_twice_sends_one_e_mail(worker_app, sink):
    worker_app.config["NOTIFICATION_DISPATCH_ON_COMMIT"] = False
    message_id = submitted_dossier().message_id
    # Two threads (two workers) deliver the same message at the same moment…
    barrier = threading.Barrier(2)

    def deliver():
        with worker_app.app_context():
            barrier.wait(timeout=10)
            return delivery.deliver_message(message_id, now=clock.now()).sent

    threads_sent = []
    threads = [threading.Thread(target=lambda: threads_sent.append(deliver())) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(threads_sent) == [0, 1]

    # …and the task queued twice more for the same row, through Redis, sends nothing more.
    celery = celery_init_app(worker_app)
    with embedded_worker(worker_app):
        celery.send_task(DELIVER_TASK, args=[message_id])
        celery.send_task(DELIVER_TASK, args=[message_id])
        time.sleep(2)
    assert len(sink.messages) == 1 and statuses(message_id) == ["sent"]


def test_messages_committed_together_are_published_once_and_each_has_its_own_task(worker_app, sink,
                                                                                   monkeypatch):
    """A commit of several messages (a nightly job's batch) publishes one task, which queues one
    delivery task per message from the worker: each is delivered (and throttled) on its own."""
    dossier = factories.dossier("received")
    applicant = factories.applicant_of(dossier.collectivite)  # no new account: the module's data stays
    db.session.commit()
    celery = celery_init_app(worker_app)
    published = []
    send_task = celery.send_task

    def recording(name, args=None, **options):
        published.append((name, args))
        return send_task(name, args=args, **options)

    monkeypatch.setattr(celery, "send_task", recording)
    for i in range(3):
        queue("submit", key=f"together-{dossier.id}-{i}", recipients=[applicant], dossier=dossier,
              now=clock.now())
    db.session.commit()
    ids = sorted(db.session.scalars(select(OutboxMessage.id).where(OutboxMessage.key.like("together-%"))))
    assert published == [(DISPATCH_TASK, [ids])]  # one publish for the three
    with embedded_worker(worker_app):
        assert wait_until(lambda: all(statuses(i) == ["sent"] for i in ids))
        time.sleep(0.5)  # nothing more comes
    assert sorted(args[0] for name, args in published if name == DELIVER_TASK) == ids  # one task each
    # Message-ID: <notification.<message id>.<delivery id>.<timestamp>@domain>
    mails = Counter(int(m["Message-ID"].split(".")[1]) for m in sink.messages)
    assert {i: mails[i] for i in ids} == {i: 1 for i in ids}  # one e-mail each


def test_a_broker_failing_while_the_worker_queues_a_batch_leaves_the_rest_to_the_re_dispatch(
        worker_app, monkeypatch):
    dossier = factories.dossier("received")
    applicant = factories.applicant_of(dossier.collectivite)
    worker_app.config["NOTIFICATION_DISPATCH_ON_COMMIT"] = False
    for i in range(3):
        queue("submit", key=f"broken-{dossier.id}-{i}", recipients=[applicant], dossier=dossier, now=clock.now())
    db.session.commit()
    ids = sorted(db.session.scalars(select(OutboxMessage.id).where(OutboxMessage.key.like("broken-%"))))
    import worker.tasks  # noqa: F401  (what the worker imports)

    celery = celery_init_app(worker_app)
    sent = []

    def broker_fails_at_the_second(name, args=None, **options):
        if len(sent) == 1:
            raise ConnectionRefusedError("broker down")
        sent.append(args[0])

    monkeypatch.setattr(celery, "send_task", broker_fails_at_the_second)
    with pytest.raises(ConnectionRefusedError):
        celery.tasks[DISPATCH_TASK](ids)  # run here, as a worker runs it
    db.session.rollback()
    assert sent == ids[:1]
    dispatched = {row.id: row.dispatched_at for row in db.session.execute(
        select(OutboxMessage.id, OutboxMessage.dispatched_at).where(OutboxMessage.id.in_(ids)))}
    assert dispatched[ids[0]] is not None and dispatched[ids[1]] is None and dispatched[ids[2]] is None


# --- deadline and reminders with a frozen clock ------------------------------------------------


def paris(*args) -> datetime:
    return datetime(*args, tzinfo=PARIS).astimezone(UTC)


def test_reminders_j30_j7_j1_then_the_deadline_through_the_worker(worker_app, sink, monkeypatch):
    # The jobs' e-mails are due from the job's instant: the worker's deliveries read the same
    # frozen clock as the jobs, or the 2027 messages would not be due yet.
    frozen = {"now": paris(2027, 6, 1, 9)}
    monkeypatch.setattr("instruction.clock.now", lambda: frozen["now"])
    draft = factories.dossier("draft")
    submitted = factories.dossier("received")  # its "submit" e-mail goes out too
    applicant = factories.applicant_of(draft.collectivite)
    db.session.commit()

    def about_the_draft(count):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = [m for m in sink.messages if draft.reference in m["Subject"]]
            if len(found) >= count:
                time.sleep(0.5)  # and nothing more comes
                return [m for m in sink.messages if draft.reference in m["Subject"]]
            time.sleep(0.05)
        return found

    with embedded_worker(worker_app):
        for day in (paris(2027, 6, 1, 9), paris(2027, 6, 1, 10), paris(2027, 6, 24, 9),
                    paris(2027, 6, 28, 9), paris(2027, 6, 30, 9), paris(2027, 6, 30, 10)):
            frozen["now"] = day
            jobs.run_job("reminders", now=day)
        assert len(about_the_draft(3)) == 3
        frozen["now"] = paris(2027, 7, 1, 0, 15)
        assert jobs.run_job("deadline", now=paris(2027, 7, 1, 0, 15)) == "1 brouillon(s) clos à la date limite"
        frozen["now"] = paris(2027, 7, 1, 0, 30)
        assert jobs.run_job("deadline", now=paris(2027, 7, 1, 0, 30)) == "0 brouillon(s) clos à la date limite"
        mails = about_the_draft(4)
    assert [m["Subject"] for m in mails] == [
        f"Rappel : dossier {draft.reference} à déposer avant la date limite"] * 3 + [
        f"Dossier {draft.reference} : brouillon clos à la date limite"]
    assert {m["To"] for m in mails} == {applicant.email}
    assert "30 juin 2027" in parts(mails[0])["text/plain"]
    db.session.rollback()
    assert db.session.get(Dossier, draft.id).state == "expired"
    assert db.session.get(Dossier, submitted.id).state == "received"


def test_periodic_tasks_run_in_the_worker_with_the_real_clock(worker_app):
    celery = celery_init_app(worker_app)
    with embedded_worker(worker_app):
        for task in ("worker.dispatch_pending", "worker.expire_drafts", "worker.send_reminders",
                     "worker.send_digests"):
            celery.send_task(task)
        assert wait_until(lambda: db.session.scalar(select(func.count()).select_from(JobRun).where(
            JobRun.status == "ok")) == 4)
    runs = {run.name: run for run in db.session.scalars(select(JobRun))}
    assert set(runs) == {"dispatch", "deadline", "reminders", "digest"}
    assert all(datetime.now(UTC) - run.finished_at < timedelta(minutes=1) for run in runs.values())


# --- the embedded broker -----------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")  # kombu's
def test_the_embedded_broker_needs_no_server(database_url, tmp_path, monkeypatch, sink):
    app = new_app(database_url, tmp_path, monkeypatch, REDIS_URL="", SMTP_PORT=sink.port)
    with app.app_context():
        submitted = submitted_dossier()
        assert (tmp_path / "instance" / "celery-broker.sqlite").exists()  # the task waits there
        with embedded_worker(app):
            assert wait_until(lambda: statuses(submitted.message_id) == ["sent"])
        db.session.remove()
        db.engine.dispose()
    [mail] = sink.messages
    assert_french_submission_e_mail(mail, submitted)
