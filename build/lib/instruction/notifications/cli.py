"""`instruction worker status` and `instruction worker run-jobs`: the worker seen from ops."""

from __future__ import annotations

from datetime import datetime, time

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import func, select, update

from instruction import clock
from instruction.extensions import db
from instruction.notifications import jobs
from instruction.notifications.models import Delivery, JobRun, OutboxMessage
from instruction.rules.parameters import PARIS


def _local(instant: datetime | None) -> str:
    return instant.astimezone(PARIS).strftime("%Y-%m-%d %H:%M:%S") if instant else "—"


def backlog(now: datetime) -> dict[str, int]:
    """Deliveries pending (of which retrying after an error), failed, and sent today (Paris)."""
    midnight = datetime.combine(now.astimezone(PARIS).date(), time(0), tzinfo=PARIS)

    def count(*where) -> int:
        return db.session.scalar(select(func.count(Delivery.id)).where(*where)) or 0

    return {
        "pending": count(Delivery.status == "pending"),
        "retrying": count(Delivery.status == "pending", Delivery.last_error.is_not(None)),
        "failed": count(Delivery.status == "failed"),
        "sent_today": count(Delivery.status == "sent", Delivery.sent_at >= midnight),
    }


@click.group("worker", help="Tâches de fond : état, exécution manuelle des tâches périodiques.")
def worker_cli() -> None:
    pass


@worker_cli.command("status")
@click.option("--failures", default=10, show_default=True, help="Nombre de derniers échecs affichés.")
@with_appcontext
def status_command(failures: int) -> None:
    """Outbox backlog, latest failures and the last run of each periodic job."""
    b = backlog(clock.now())
    click.echo("Notifications (par destinataire)")
    click.echo(f"  en attente : {b['pending']} (dont {b['retrying']} en nouvelle tentative après erreur)")
    click.echo(f"  en échec définitif : {b['failed']}")
    click.echo(f"  envoyées aujourd'hui : {b['sent_today']}")
    rows = db.session.execute(
        select(Delivery, OutboxMessage).join(OutboxMessage, OutboxMessage.id == Delivery.message_id)
        .where(Delivery.last_error.is_not(None)).order_by(Delivery.id.desc()).limit(failures)).all()
    click.echo("Derniers échecs")
    if not rows:
        click.echo("  aucun")
    for delivery, message in rows:
        state = "abandonné" if delivery.status == "failed" else \
            f"nouvelle tentative {_local(delivery.next_attempt_at)}"
        click.echo(f"  #{delivery.id} {message.kind} → {delivery.email} · {delivery.attempts} tentative(s) · "
                   f"{state}\n      {delivery.last_error}")
    click.echo("Tâches périodiques (dernière exécution)")
    runs = {run.name: run for run in db.session.scalars(select(JobRun))}
    for name in jobs.JOBS:
        run = runs.get(name)
        if run is None:
            click.echo(f"  {name:<10} jamais exécutée")
        else:
            click.echo(f"  {name:<10} {run.status or '—':<8} début {_local(run.started_at)} · "
                       f"fin {_local(run.finished_at)} · {run.summary or ''}")


@worker_cli.command("run-jobs")
@click.option("--job", "names", multiple=True, type=click.Choice(list(jobs.JOBS)),
              help="Tâche à exécuter (répétable) ; par défaut toutes.")
@click.option("--now", "now_text", help="Instant simulé (ISO 8601 ; sans fuseau : heure de Paris).")
@click.option("--deliver", is_flag=True,
              help="Envoyer les courriels dus ici même, sans passer par le courtier.")
@with_appcontext
def run_jobs_command(names: tuple[str, ...], now_text: str | None, deliver: bool) -> None:
    """Run the periodic jobs once, synchronously (deadline, reminders, digest, dispatch)."""
    now = clock.now()
    if now_text:
        now = datetime.fromisoformat(now_text)
        now = now.replace(tzinfo=PARIS) if now.tzinfo is None else now
    if deliver:  # everything is sent below: do not also queue tasks at each commit
        current_app.config["NOTIFICATION_DISPATCH_ON_COMMIT"] = False
    for name in names or tuple(jobs.JOBS):
        options = {"deliver": True} if deliver and name == "dispatch" else {}
        click.echo(f"{name} : {jobs.run_job(name, now=now, **options)}")


@worker_cli.command("retry-failed")
@with_appcontext
def retry_failed_command() -> None:
    """Give every failed delivery one more attempt (after fixing the relay, say)."""
    ids = list(db.session.scalars(select(Delivery.message_id).where(Delivery.status == "failed").distinct()))
    count = db.session.execute(update(Delivery).where(Delivery.status == "failed").values(
        status="pending", next_attempt_at=clock.now())).rowcount
    db.session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(ids)).values(dispatched_at=None))
    db.session.commit()
    click.echo(f"{count} envoi(s) remis en attente : la prochaine re-distribution les enverra.")
