"""Deliver an outbox message by SMTP: one e-mail per pending delivery, each claimed first.

A delivery is claimed by one conditional UPDATE (pending and due → attempts + 1 and a lease:
``next_attempt_at`` moves past the task's time limit), committed before anything is sent. A
second task, a second worker or a retry for the same row finds nothing to claim, so each row
sends at most one e-mail; if the worker dies while sending, the lease expires and the periodic
re-dispatch tries again. A failure records its error and the next attempt with exponential
backoff; after ``NOTIFICATION_MAX_ATTEMPTS`` attempts (or a recipient refused for good) the
delivery is ``failed``.
"""

from __future__ import annotations

import logging
import secrets
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from flask import current_app
from sqlalchemy import and_, or_, select, update

from instruction import clock
from instruction.db import rowcount
from instruction.extensions import db
from instruction.notifications.emails import build_email
from instruction.notifications.models import Delivery, OutboxMessage

log = logging.getLogger(__name__)

# Longer than the delivery task's hard time limit (90 s, worker/tasks.py): a delivery claimed by a
# worker that died is taken again by the re-dispatch at most a lease and a beat tick later.
CLAIM_LEASE = timedelta(minutes=2)
MAX_BACKOFF = timedelta(hours=1)
# A retry due within this is the task's own (a countdown, the task held unacknowledged by a worker
# meanwhile); a later one is queued by the periodic re-dispatch when due. The broker's visibility
# timeout (BROKER_VISIBILITY_TIMEOUT) must exceed it plus the task's time limit.
TASK_RETRY_MAX = timedelta(seconds=60)


@dataclass
class Outcome:
    sent: int = 0
    failed: int = 0  # given up for good
    retry_at: datetime | None = None  # earliest retry of a delivery that failed this time
    task_retry_at: datetime | None = None  # the same, when the task retries itself (soon enough)


def abandoned(now: datetime):
    """A claim whose lease has passed: the worker that held it died (killed, machine lost)."""
    return and_(Delivery.status == "pending", Delivery.claimed_at.is_not(None),
                Delivery.next_attempt_at <= now)


def due(now: datetime):
    return and_(Delivery.status == "pending",
                or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now))


def claim(delivery_id: int, now: datetime) -> bool:
    """Take the delivery for one attempt; False if it is not pending and due (sent, failed, or
    claimed by someone else). Commits, so that every other worker sees the claim, together with
    the outcome of the previous delivery of the same task: while a task runs, one of its
    deliveries is always claimed, so a worker killed at any point leaves a claim behind."""
    result = db.session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, due(now))
        .values(attempts=Delivery.attempts + 1, next_attempt_at=now + CLAIM_LEASE, claimed_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return rowcount(result) == 1


def backoff(attempts: int) -> timedelta:
    """Wait after the ``attempts``-th failure: RETRY_DELAY, ×2 each time, at most an hour."""
    delay = current_app.config["NOTIFICATION_RETRY_DELAY"] * 2 ** max(attempts - 1, 0)
    return min(timedelta(seconds=delay), MAX_BACKOFF)


class Relay:
    """One SMTP connection, opened on first use and reopened after an error; or, when
    ``MAIL_FOLDER`` is set (the embedded default, with no relay), a folder of .eml files."""

    def __init__(self):
        self.config = current_app.config
        self.smtp: smtplib.SMTP | None = None

    def send(self, email) -> None:
        if folder := self.config.get("MAIL_FOLDER"):
            _write_eml(Path(folder), email)
            return
        if self.smtp is None:
            config = self.config
            smtp = smtplib.SMTP(config["SMTP_HOST"], config["SMTP_PORT"], timeout=config["SMTP_TIMEOUT"])
            try:
                if config["SMTP_STARTTLS"]:
                    smtp.starttls(context=ssl.create_default_context())
                if config["SMTP_USER"]:
                    smtp.login(config["SMTP_USER"], config["SMTP_PASSWORD"])
            except BaseException:
                smtp.close()
                raise
            self.smtp = smtp
        self.smtp.send_message(email)

    def close(self, *, polite: bool = True) -> None:
        if self.smtp is not None:
            try:
                if polite:
                    self.smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass
            finally:
                self.smtp.close()
                self.smtp = None


def _write_eml(folder: Path, email) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{clock.now():%Y%m%dT%H%M%S%f}-{secrets.token_hex(4)}.eml"
    temporary = folder / f".{name}.part"
    temporary.write_bytes(email.as_bytes())
    temporary.replace(folder / name)


def _permanent(error: Exception) -> bool:
    """A recipient refused with a 5xx code will not be accepted later."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in error.recipients.values())
    return False


def deliver_message(message_id: int, *, now: datetime) -> Outcome:
    """Send the due deliveries of one message, as of ``now`` (the task's clock, or a test's)."""
    outcome = Outcome()
    message = db.session.get(OutboxMessage, message_id)
    if message is None:
        return outcome
    ids = db.session.scalars(select(Delivery.id).where(Delivery.message_id == message_id,
                                                       due(now)).order_by(Delivery.id)).all()
    relay = Relay()
    try:
        for delivery_id in ids:
            if not claim(delivery_id, now):
                continue
            delivery = db.session.get_one(Delivery, delivery_id)  # claimed just above
            try:
                relay.send(build_email(delivery.message, delivery))
            except Exception as error:  # recorded on the row; the task retries
                if not isinstance(error, smtplib.SMTPException | OSError):
                    log.exception("Delivery %s failed", delivery_id)
                relay.close(polite=False)
                _record_failure(delivery, error, now)
                if delivery.status == "failed":
                    outcome.failed += 1
                elif (outcome.retry_at is None or (delivery.next_attempt_at is not None
                                                   and delivery.next_attempt_at < outcome.retry_at)):
                    outcome.retry_at = delivery.next_attempt_at
            else:
                delivery.status, delivery.sent_at = "sent", now
                delivery.next_attempt_at = delivery.last_error = None
                outcome.sent += 1
            delivery.claimed_at = None
            db.session.flush()  # committed with the next claim, or below
        db.session.commit()
    finally:
        relay.close()
    if outcome.retry_at is not None:
        message = db.session.get_one(OutboxMessage, message_id)
        if outcome.retry_at - now <= TASK_RETRY_MAX:
            # The caller queues a retry for then; the re-dispatch leaves the row alone until it is stale.
            outcome.task_retry_at = message.dispatched_at = outcome.retry_at
        else:
            # Not dispatched: the re-dispatch queues it once the retry is due (``due``), not before.
            message.dispatched_at = None
        db.session.commit()
    return outcome


def _record_failure(delivery: Delivery, error: Exception, now: datetime) -> None:
    delivery.last_error = f"{type(error).__name__}: {error}"[:2000]
    if _permanent(error) or delivery.attempts >= current_app.config["NOTIFICATION_MAX_ATTEMPTS"]:
        delivery.status, delivery.next_attempt_at = "failed", None
    else:
        delivery.next_attempt_at = now + backoff(delivery.attempts)
