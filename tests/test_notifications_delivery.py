"""Delivering outbox messages by SMTP to a real SMTP server (aiosmtpd), with a frozen clock.

French e-mails, text and HTML, with the reference and the link; one e-mail per delivery however
often it is attempted; retries with backoff while the relay refuses connections; failed after the
last attempt. Also the after-commit dispatch (with the broker replaced by a recorder).
"""

from __future__ import annotations

import email
import socket
import time
from datetime import timedelta
from email import policy

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from instruction import clock
from instruction.dossiers import services
from instruction.notifications import delivery, dispatch, kinds
from instruction.notifications.emails import build_email
from instruction.notifications.models import Delivery, OutboxMessage
from instruction.notifications.services import queue
from tests import factories
from tests.factories import NOW


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpSink:
    """A real SMTP server on 127.0.0.1 that keeps every message it accepts; recipients listed in
    ``refuse`` are refused for good (550)."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.messages: list[email.message.EmailMessage] = []
        self.refuse: set[str] = set()
        self.controller: Controller | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 Destinataire inconnu"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def start(self) -> SmtpSink:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def to(self, address: str) -> list:
        return [m for m in self.messages if m["To"] == address]

    def wait_for(self, count: int, timeout: float = 30) -> list:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.messages


def parts(message) -> dict[str, str]:
    """{"text/plain": …, "text/html": …} of a multipart/alternative e-mail."""
    assert message.get_content_type() == "multipart/alternative"
    return {part.get_content_type(): part.get_content() for part in message.iter_parts()}


@pytest.fixture
def sink(app, monkeypatch):
    smtp = SmtpSink().start()
    monkeypatch.setitem(app.config, "SMTP_PORT", smtp.port)
    monkeypatch.setitem(app.config, "BASE_URL", "https://aides.example")
    yield smtp
    smtp.stop()


def message_of(dossier, kind):
    return factories.db.session.scalar(select(OutboxMessage).where(
        OutboxMessage.dossier_id == dossier.id, OutboxMessage.kind == kind))


def test_submission_e_mail_is_french_multipart_with_reference_and_link(session, sink):
    dossier = factories.dossier("received")
    applicant = factories.applicant_of(dossier.collectivite)
    message = message_of(dossier, "submit")
    session.commit()
    t0 = clock.now()

    outcome = delivery.deliver_message(message.id, now=t0)

    assert (outcome.sent, outcome.failed, outcome.retry_at) == (1, 0, None)
    [mail] = sink.messages
    assert mail["To"] == applicant.email
    assert mail["Subject"] == f"Dossier {dossier.reference} : dépôt enregistré"
    assert mail["From"] == "aides-numeriques@bourgognefranchecomte.fr"
    body = parts(mail)
    link = f"https://aides.example/portail/dossiers/{dossier.id}"
    for content in body.values():
        assert dossier.reference in content and link in content
        assert "Bonjour" in content and "a bien été déposé le 28 novembre 2026" in content
    assert f'href="{link}"' in body["text/html"] and "<html lang=\"fr\">" in body["text/html"]
    row = session.scalar(select(Delivery).where(Delivery.message_id == message.id))
    assert (row.status, row.sent_at, row.attempts, row.last_error) == ("sent", t0, 1, None)


def test_staff_get_the_back_office_link_and_applicant_text_is_escaped_in_html(session, sink):
    dossier = factories.dossier("received")
    instructor = factories.staff("instructor")
    services.assign(dossier, instructor, now=NOW)
    applicant = factories.applicant_of(dossier.collectivite)
    services.withdraw(dossier, applicant, "Projet <abandonné> & reporté", now=NOW)
    message = message_of(dossier, "withdraw")
    session.commit()
    t0 = clock.now()

    delivery.deliver_message(message.id, now=t0)

    [mail] = sink.to(instructor.email)
    body = parts(mail)
    assert f"https://aides.example/instruction/dossiers/{dossier.id}" in body["text/html"]
    assert "Projet <abandonné> & reporté" in body["text/plain"]
    assert "Projet &lt;abandonné&gt; &amp; reporté" in body["text/html"]


def test_delivering_the_same_message_twice_sends_one_e_mail(session, sink):
    dossier = factories.dossier("received")
    message = message_of(dossier, "submit")
    session.commit()
    t0 = clock.now()

    first = delivery.deliver_message(message.id, now=t0)
    second = delivery.deliver_message(message.id, now=t0 + timedelta(hours=2))

    assert (first.sent, second.sent) == (1, 0)
    assert len(sink.messages) == 1


def test_a_claimed_row_is_not_claimed_again_until_its_lease_expires(session):
    dossier = factories.dossier("received")
    row = message_of(dossier, "submit").deliveries[0]
    session.commit()
    t0 = clock.now()
    assert delivery.claim(row.id, t0) is True
    assert delivery.claim(row.id, t0) is False  # another task, another worker
    assert delivery.claim(row.id, t0 + delivery.CLAIM_LEASE) is True  # the first one died
    session.refresh(row)
    assert row.attempts == 2


def test_smtp_refusing_connections_then_accepting(session, app, monkeypatch):
    port = free_port()  # nothing listens there yet
    monkeypatch.setitem(app.config, "SMTP_PORT", port)
    monkeypatch.setitem(app.config, "NOTIFICATION_RETRY_DELAY", 60)
    dossier = factories.dossier("received")
    message = message_of(dossier, "submit")
    session.commit()
    t0 = clock.now()

    outcome = delivery.deliver_message(message.id, now=t0)
    row = message.deliveries[0]
    session.refresh(row)
    assert outcome.sent == 0 and outcome.retry_at == t0 + timedelta(seconds=60)
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 1, t0 + timedelta(seconds=60))
    assert "ConnectionRefusedError" in row.last_error
    session.refresh(message)
    assert message.dispatched_at == outcome.retry_at  # a retry is planned: no re-dispatch before

    # Not due yet: nothing is attempted.
    assert delivery.deliver_message(message.id, now=t0 + timedelta(seconds=30)).retry_at is None
    # Second failure: the wait doubles.
    outcome = delivery.deliver_message(message.id, now=t0 + timedelta(seconds=60))
    session.refresh(row)
    assert (row.attempts, row.next_attempt_at) == (2, t0 + timedelta(seconds=180))

    sink = SmtpSink(port).start()
    try:
        outcome = delivery.deliver_message(message.id, now=t0 + timedelta(seconds=180))
    finally:
        sink.stop()
    session.refresh(row)
    assert outcome.sent == 1 and len(sink.messages) == 1
    assert (row.status, row.attempts, row.last_error) == ("sent", 3, None)


def test_failed_after_the_last_attempt(session, app, monkeypatch):
    monkeypatch.setitem(app.config, "SMTP_PORT", free_port())
    monkeypatch.setitem(app.config, "NOTIFICATION_MAX_ATTEMPTS", 3)
    dossier = factories.dossier("received")
    message = message_of(dossier, "submit")
    row = message.deliveries[0]
    session.commit()
    t0 = clock.now()
    now = t0
    for _ in range(3):
        outcome = delivery.deliver_message(message.id, now=now)
        session.refresh(row)
        now = row.next_attempt_at or now
    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", 3, None)
    assert outcome.failed == 1 and outcome.retry_at is None
    assert delivery.deliver_message(message.id, now=now + timedelta(days=1)).sent == 0


def test_backoff_doubles_and_is_capped(app):
    with app.app_context():
        assert [delivery.backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
        assert delivery.backoff(20) == delivery.MAX_BACKOFF


def test_a_recipient_refused_for_good_fails_at_once_and_the_others_are_sent(session, sink):
    dossier = factories.dossier("received")
    colleague = factories.user("applicant", collectivite=dossier.collectivite)
    author = factories.applicant_of(dossier.collectivite)
    sink.refuse.add(colleague.email)
    services.request_documents(dossier, factories.staff("instructor"), "La facture signée.", now=NOW)
    message = message_of(dossier, "request_documents")
    session.commit()
    t0 = clock.now()

    outcome = delivery.deliver_message(message.id, now=t0)

    statuses = {d.email: d.status for d in message.deliveries}
    assert statuses == {author.email: "sent", colleague.email: "failed"}
    assert (outcome.sent, outcome.failed) == (1, 1)
    assert "550" in next(d.last_error for d in message.deliveries if d.status == "failed")


def test_account_e_mails_carry_their_own_link(session, sink):
    user = factories.user("applicant")
    queue("password_reset", key=f"password-reset:{user.id}:1", recipients=[user],
          context={"url": "https://aides.example/mot-de-passe/jeton", "full_name": "Claire Martin"},
          now=clock.now())
    message = session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "password_reset"))
    session.commit()
    t0 = clock.now()

    delivery.deliver_message(message.id, now=t0)

    [mail] = sink.messages
    assert mail["Subject"] == "Réinitialisation de votre mot de passe"
    for content in parts(mail).values():
        assert "https://aides.example/mot-de-passe/jeton" in content
        assert "Bonjour Claire Martin" in content


@pytest.mark.parametrize("kind", sorted(kinds.KINDS))
def test_every_kind_has_a_french_text_and_html_template(session, app, kind):
    # Account e-mails, the digest, the campaign's change of dates and an export are about no single dossier.
    dossier = None if kind in kinds.ACCOUNT_KINDS + ("digest", "campaign_dates", "export_ready") \
        else factories.dossier("received")
    user = factories.staff("instructor") if kind == "digest" else factories.user("applicant")
    context = {"reference": dossier.reference if dossier else None, "reason": "Motif précis",
               "title": "Projet", "days": 7, "last_day": "30 juin 2027", "requested_on": "1er juin 2027",
               "url": "https://aides.example/lien" if kind in kinds.ACCOUNT_KINDS else None,
               "full_name": "Inès Moreau", "date": "1er juin 2027",
               "new": [{"id": 1, "reference": "X-1", "title": "T", "state": "Reçu", "collectivite": "C"}],
               "waiting": [], "envelopes": [{"aid": 2, "scope": "CC", "consumed": "27 000,00 €",
                                             "cap": "30 000,00 €", "percent": 90}],
               "campaign": "Campagne de démonstration", "change": "clôture avancée au 15 juin 2027",
               "still_open": True}
    message = OutboxMessage(key=f"test:{kind}", kind=kind, dossier=dossier, context=context, created_at=NOW)
    row = Delivery(message=message, user=user, email=user.email)
    session.add(message)
    session.flush()

    mail = build_email(message, row)

    body = parts(mail)
    assert mail["Subject"] == kinds.subject(kind, context["reference"])
    for content in body.values():
        assert "Bonjour" in content and "merci de ne pas y répondre" in content
        if dossier is not None:
            assert dossier.reference in content and f"/dossiers/{dossier.id}" in content
        if kind == "campaign_dates":
            assert "Campagne de démonstration" in content and "clôture avancée au 15 juin 2027" in content
    assert kinds.label(kind) != kind


# --- dispatch after commit ---------------------------------------------------------------------


@pytest.fixture
def queued(app, monkeypatch):
    """The ids the after-commit hook hands to the broker (replaced by a list)."""
    ids: list[int] = []
    monkeypatch.setitem(app.config, "NOTIFICATION_DISPATCH_ON_COMMIT", True)
    monkeypatch.setattr(dispatch, "enqueue", lambda message_ids: ids.extend(message_ids))
    return ids


def test_messages_are_queued_after_the_commit_that_wrote_them(session, queued):
    dossier = factories.dossier("draft")
    session.commit()
    assert queued == []
    services.submit(dossier, factories.applicant_of(dossier.collectivite), now=NOW)
    session.flush()
    assert queued == []  # not before the commit
    session.commit()
    assert queued == [message_of(dossier, "submit").id]


def test_a_savepoint_released_inside_the_transaction_queues_nothing_yet(session, queued):
    """SQLAlchemy calls ``after_commit`` when a SAVEPOINT is released too (the commission's grants,
    one savepoint per line): queuing then handed the worker a row it could not see yet, and the
    grant e-mail waited for the re-dispatch, an hour later."""
    dossier = factories.dossier("draft")
    session.commit()
    with session.begin_nested():
        services.submit(dossier, factories.applicant_of(dossier.collectivite), now=NOW)
    assert queued == []  # the savepoint is released, the transaction is still open
    session.commit()
    assert queued == [message_of(dossier, "submit").id]


def test_nothing_is_queued_when_the_transaction_rolls_back(session, queued):
    dossier = factories.dossier("draft")
    session.commit()
    services.submit(dossier, factories.applicant_of(dossier.collectivite), now=NOW)
    session.flush()
    session.rollback()
    session.commit()
    assert queued == []


def test_a_broker_error_does_not_undo_the_commit(session, app, monkeypatch, caplog):
    monkeypatch.setitem(app.config, "NOTIFICATION_DISPATCH_ON_COMMIT", True)

    def broker_down(message_ids):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(dispatch, "enqueue", broker_down)
    dossier = factories.dossier("draft")
    services.submit(dossier, factories.applicant_of(dossier.collectivite), now=NOW)
    session.commit()  # does not raise

    assert dossier.state == "received" and message_of(dossier, "submit") is not None
    assert "periodic re-dispatch will send them" in caplog.text


def test_many_messages_are_handed_to_the_publisher_a_chunk_at_a_time(app, session, monkeypatch):
    """A nightly job's batch is one publish (the worker queues each message's own task), not one
    publish per message."""
    published: list[list[int]] = []
    monkeypatch.setitem(app.extensions, "outbox_publisher", published.append)
    dispatch.enqueue(iter(range(1, dispatch.CHUNK * 2 + 2)))
    assert [len(ids) for ids in published] == [dispatch.CHUNK, dispatch.CHUNK, 1]
    assert [i for ids in published for i in ids] == list(range(1, dispatch.CHUNK * 2 + 2))
    published.clear()
    dispatch.enqueue([])
    assert published == []


def test_without_a_relay_emails_are_written_to_the_mail_folder(app, session, monkeypatch, tmp_path):
    """The embedded default (no SMTP_HOST): a demo keeps its e-mails as .eml files."""
    monkeypatch.setitem(app.config, "MAIL_FOLDER", str(tmp_path / "mail"))
    dossier = factories.dossier("received")
    message = session.scalar(select(OutboxMessage).where(OutboxMessage.dossier_id == dossier.id))
    session.commit()
    delivery.deliver_message(message.id, now=clock.now())
    files = list((tmp_path / "mail").glob("*.eml"))
    assert len(files) == 1
    body = files[0].read_text()
    assert dossier.reference in body and "Subject:" in body
    session.refresh(message.deliveries[0])
    assert message.deliveries[0].status == "sent"
