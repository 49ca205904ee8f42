"""Thin tasks: they take ids (never objects), run in an application context (``FlaskTask``) and
call the services of ``instruction.notifications``. Every one is idempotent."""

from __future__ import annotations

import logging

from celery import shared_task
from sqlalchemy.exc import OperationalError

from instruction import clock
from instruction.notifications import delivery, dispatch, jobs
from worker.celery_app import DELIVER_TASK, DISPATCH_TASK

log = logging.getLogger(__name__)


@shared_task(name="worker.deliver_message", bind=True, soft_time_limit=60, time_limit=90,
             acks_late=True, reject_on_worker_lost=True,
             autoretry_for=(OperationalError,), retry_kwargs={"max_retries": 5}, retry_backoff=True,
             retry_backoff_max=60, max_retries=None)
def deliver_message(self, message_id: int) -> None:
    """Send the due deliveries of one outbox message; retry when the SMTP relay failed: by the
    task itself when the retry comes within ``delivery.TASK_RETRY_MAX``, else by the periodic
    re-dispatch when it is due (no task waits long unacknowledged in a worker).

    ``reject_on_worker_lost``: a task whose process died goes back to the queue. It cannot loop
    for ever: each run claims (and counts an attempt of) the delivery it was sending, which is
    ``failed`` after NOTIFICATION_MAX_ATTEMPTS."""
    outcome = delivery.deliver_message(message_id, now=clock.now())
    if outcome.task_retry_at is not None:
        countdown = max((outcome.task_retry_at - clock.now()).total_seconds(), 0.1)
        # The database counts attempts and gives up; the re-dispatch covers a lost retry.
        raise self.retry(countdown=countdown)


@shared_task(name=DISPATCH_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)
def dispatch_messages(self, message_ids: list[int]) -> str:
    """Queue one delivery task (above) per message: what a commit of several messages publishes
    (a nightly job's batch, a re-dispatch), so that it publishes once, not once per message. Each
    message is then delivered, retried and throttled (``NOTIFICATION_RATE``) by its own task.

    If the broker fails midway, the messages not queued are marked not dispatched: the next
    re-dispatch queues them. Acknowledged when done: if its worker dies, Redis gives it out again
    (after the visibility timeout) and it queues every message again; a message whose task was
    queued twice is still sent once (each delivery is claimed). Lost altogether (the broker's
    content lost), its messages are queued again by the re-dispatch like any lost task."""
    for position, message_id in enumerate(message_ids):
        try:
            self.app.send_task(DELIVER_TASK, args=[message_id])
        except Exception:
            log.exception("Could not queue the delivery of outbox messages %s; "
                          "the periodic re-dispatch will send them", message_ids[position:])
            dispatch.mark_not_dispatched(message_ids[position:])
            raise
    return f"{len(message_ids)} message(s) mis en file"


@shared_task(name="worker.dispatch_pending")
def dispatch_pending() -> str:
    return jobs.run_job("dispatch", now=clock.now())


@shared_task(name="worker.expire_drafts")
def expire_drafts() -> str:
    return jobs.run_job("deadline", now=clock.now())


@shared_task(name="worker.send_reminders")
def send_reminders() -> str:
    return jobs.run_job("reminders", now=clock.now())


@shared_task(name="worker.send_digests")
def send_digests() -> str:
    return jobs.run_job("digest", now=clock.now())


@shared_task(name="worker.render_acts")
def render_acts() -> str:
    return jobs.run_job("acts")


@shared_task(name="worker.balance_deadlines")
def balance_deadlines() -> str:
    """Reminders before the time limit to ask for the balance, caducité of the grants after it."""
    return jobs.run_job("balance_deadlines", now=clock.now())


@shared_task(name="worker.purge_documents")
def purge_documents() -> str:
    from instruction import clock

    return jobs.run_job("purge_documents", now=clock.now())


@shared_task(name="worker.verify_audit_chain")
def verify_audit_chain() -> str:
    """Verify the audit chain and store the result that the admin home shows."""
    from instruction.audit.services import verify_and_record
    from instruction.extensions import db

    result = verify_and_record(clock.now())
    db.session.commit()
    return result.message


@shared_task(name="worker.build_export", soft_time_limit=3600, time_limit=3700)
def build_export(job_id: int) -> str:
    """Build the file of one export job (a job already taken or done is left alone)."""
    from instruction.exports import services as export_jobs

    return export_jobs.build_export(job_id, now=clock.now())


@shared_task(name="worker.tend_exports")
def tend_exports() -> str:
    """Delete expired export files; queue again the exports never started or abandoned."""
    from instruction.exports import services as export_jobs

    return export_jobs.tend(clock.now())
