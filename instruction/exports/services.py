"""Exports built by the worker: requested by a view, built by a task, downloaded, purged.

A view too large to be sent at once (more than EXPORT_INLINE_MAX_ROWS rows) becomes an
``ExportJob`` owned by its author. The worker's task (``worker.build_export``) claims it by a
conditional UPDATE (a second task for the same job finds nothing to do), reads the rows again
with the author's role and filters (an export holds only what its author may see), in batches
read in order by keyset (``exports.export_rows_in_batches``: no cursor held across commits), and
streams them to a file under EXPORT_FOLDER; after each batch it records the rows done (the
progress bar) and its heartbeat. The file is written under a temporary name and renamed when
complete; the author is then told by an in-app notification (and its e-mail). A ready file is
kept EXPORT_RETENTION_HOURS, then the hourly ``tend`` job deletes it (idempotent) and queues
again the jobs never started (broker down) or left by a worker that died.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from flask import Flask, current_app
from sqlalchemy import func, or_, select, update

from instruction import clock
from instruction.accounts.models import User
from instruction.backoffice import exports, queries
from instruction.db import rowcount
from instruction.errors import Refusal
from instruction.exports.models import EXPORT_FORMATS, ExportJob
from instruction.extensions import db
from instruction.notifications.services import queue
from instruction.rules.formatting import format_date_fr, format_integer
from instruction.rules.parameters import PARIS, paris_date

log = logging.getLogger(__name__)

BATCH = 2000
MAX_IN_PROGRESS = 3  # per author: queued or running at the same time
# A running job whose last batch is older than this was left by a worker that died (a batch takes
# well under a second; the task's own time limit is far above a 100,000-row export).
STALLED_AFTER = timedelta(minutes=10)
# A queued job not started after this was never handed to a worker (broker down at the request).
UNSTARTED_AFTER = timedelta(minutes=2)
MAX_ATTEMPTS = 3
FORMAT_LABELS = {"csv": "CSV", "xlsx": "XLSX"}
_KEY = re.compile(r"[0-9a-f]{32}")

_PUBLISHER = "export_publisher"
Publisher = Callable[[int], None]


class TooManyExports(Refusal):
    status = 409


# --- request -------------------------------------------------------------------------------------


def inline_max_rows() -> int:
    return int(current_app.config["EXPORT_INLINE_MAX_ROWS"])


def view_params(f: queries.QueueFilters) -> dict[str, str]:
    """The URL parameters of the view (its page aside): what the job keeps and builds from."""
    params = f.to_args(page=1)
    params.pop("page", None)
    return params


def request_export(author: User, f: queries.QueueFilters, fmt: str, *, rows_total: int,
                   now: datetime) -> ExportJob:
    """A job for the view ``f`` of ``author`` (flushed, not committed); ``dispatch`` it after the
    commit. Refused when the author already has MAX_IN_PROGRESS exports in preparation."""
    if fmt not in EXPORT_FORMATS:
        raise Refusal(f"Format d'export « {fmt[:10]} » inconnu : CSV ou XLSX.")
    if not author.is_staff:
        raise Refusal("Seuls les agents de la Région peuvent exporter des dossiers.")
    busy = db.session.scalar(select(func.count(ExportJob.id)).where(
        ExportJob.author_id == author.id, ExportJob.status.in_(("queued", "running"))))
    if busy and busy >= MAX_IN_PROGRESS:
        raise TooManyExports(f"Vous avez déjà {busy} exports en préparation : attendez qu'ils soient prêts "
                             "avant d'en demander un autre.")
    job = ExportJob(author=author, format=fmt, tab=f.tab, params=view_params(f), status="queued",
                    rows_total=rows_total, rows_done=0, created_at=now)
    db.session.add(job)
    db.session.flush()
    return job


def set_publisher(app: Flask, publish: Publisher) -> None:
    """Given by the worker package at start-up (``worker.celery_app.install_publisher``)."""
    app.extensions[_PUBLISHER] = publish


def dispatch(job_id: int) -> bool:
    """Hand the job to a worker, after the commit that wrote it. If the broker cannot be reached
    the job stays queued and ``tend`` queues it again; returns whether it was handed over."""
    if not current_app.config.get("NOTIFICATION_DISPATCH_ON_COMMIT"):
        return False
    publish = current_app.extensions.get(_PUBLISHER)
    if publish is None:
        log.error("no export publisher: worker.celery_app.install_publisher(app) gives it")
        return False
    try:
        publish(job_id)
    except Exception:
        log.exception("Could not queue export job %s; the periodic job will queue it again", job_id)
        return False
    return True


# --- building ------------------------------------------------------------------------------------


def export_folder() -> Path:
    return Path(current_app.config["EXPORT_FOLDER"])


def path_for(storage_key: str) -> Path:
    if not _KEY.fullmatch(storage_key or ""):
        raise ValueError(f"not an export key: {storage_key!r}")
    return export_folder() / storage_key


def _part_path(storage_key: str) -> Path:
    return export_folder() / f".{storage_key}.part"


def file_name(job: ExportJob) -> str:
    day = paris_date(job.created_at).isoformat()
    return f"dossiers-{job.tab}-{day}-{job.id}.{job.format}"


def claim(job_id: int, *, now: datetime) -> bool:
    """Take a queued job (committed at once, so that no other worker takes it)."""
    result = db.session.execute(
        update(ExportJob).where(ExportJob.id == job_id, ExportJob.status == "queued")
        .values(status="running", started_at=now, heartbeat_at=now, rows_done=0,
                attempts=ExportJob.attempts + 1)
        .execution_options(synchronize_session=False))
    db.session.commit()
    return rowcount(result) == 1


def _fail(job: ExportJob, message: str, *, now: datetime) -> str:
    job.status, job.error, job.finished_at = "failed", message, now
    db.session.commit()
    return f"Export {job.id} : échec ({message})"


def build_export(job_id: int, *, now: datetime) -> str:
    """Build the file of a queued job (a job not queued, already taken or done, is left alone).
    ``now``: the instant the task started; each batch's heartbeat reads the clock."""
    if not claim(job_id, now=now):
        return f"Export {job_id} : rien à faire"
    job = db.session.get(ExportJob, job_id)
    assert job is not None
    author = job.author
    if not (author.active and author.is_staff):
        return _fail(job, "son auteur n'a plus accès aux dossiers", now=now)
    options = queries.FilterOptions.load()
    f = queries.parse_filters(job.params, options, role=author.role, user_id=author.id)
    job.rows_total = queries.tab_counts(f)[f.tab]
    key = secrets.token_hex(16)
    folder = export_folder()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    part = _part_path(key)
    db.session.commit()

    def progress(done: int) -> None:
        db.session.execute(update(ExportJob).where(ExportJob.id == job_id)
                           .values(rows_done=done, heartbeat_at=clock.now())
                           .execution_options(synchronize_session=False))
        db.session.commit()

    try:
        rows = exports.export_rows_in_batches(f, options.aids, batch=BATCH, after_batch=progress)
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as output:
            if job.format == "csv":
                for line in exports.csv_lines(rows):
                    output.write(line.encode("utf-8"))
            else:
                label = queries.TABS[f.tab].label
                exports.write_xlsx(rows, title=f"Dossiers - {label}", output=output)
            output.flush()
            os.fsync(output.fileno())
        size = part.stat().st_size
        os.replace(part, folder / key)
    except Exception as error:
        db.session.rollback()
        part.unlink(missing_ok=True)
        failed = db.session.get(ExportJob, job_id)
        if failed is not None:
            _fail(failed, f"erreur pendant la préparation ({type(error).__name__})", now=clock.now())
        raise
    finished = clock.now()
    job = db.session.get(ExportJob, job_id)
    assert job is not None
    retention = timedelta(hours=current_app.config["EXPORT_RETENTION_HOURS"])
    done = db.session.scalar(select(ExportJob.rows_done).where(ExportJob.id == job_id)) or 0
    job.status, job.storage_key, job.size_bytes = "ready", key, size
    job.rows_done, job.rows_total = done, done
    job.finished_at, job.expires_at, job.file_name = finished, finished + retention, file_name(job)
    _notify_ready(job, now=finished)
    db.session.commit()
    return f"Export {job.id} : {done} ligne(s) en {job.format.upper()}"


def _when(instant: datetime) -> str:
    local = instant.astimezone(PARIS)
    return f"{format_date_fr(local.date())} à {local:%H} h {local:%M}"


def _notify_ready(job: ExportJob, *, now: datetime) -> None:
    rows = format_integer(job.rows_done).replace("\u00a0", " ")
    tab = queries.TABS[job.tab].label if job.tab in queries.TABS else job.tab
    queue("export_ready", key=f"export:{job.id}:ready", recipients=[job.author], now=now, context={
        "path": f"/instruction/exports/{job.id}",
        "reason": f"Export {FORMAT_LABELS[job.format]} de {rows} dossier(s) (onglet « {tab} »), "
                  f"à télécharger jusqu'au {_when(job.expires_at or now)}.",
        "format": FORMAT_LABELS[job.format], "rows": rows, "tab": tab,
        "until": _when(job.expires_at or now)})


# --- reading -------------------------------------------------------------------------------------


def job_of(user: User, job_id: int) -> ExportJob | None:
    """The job if ``user`` is its author (None otherwise, whether it exists or not)."""
    job = db.session.get(ExportJob, job_id)
    if job is None or job.author_id != user.id:
        return None
    return job


def jobs_of(user: User, limit: int = 50) -> list[ExportJob]:
    return list(db.session.scalars(select(ExportJob).where(ExportJob.author_id == user.id)
                                   .order_by(ExportJob.created_at.desc(), ExportJob.id.desc()).limit(limit)))


def ready_file(job: ExportJob, *, now: datetime) -> Path | None:
    """The file of a ready job not yet expired, if it is there."""
    if job.status != "ready" or job.storage_key is None or (job.expires_at and job.expires_at <= now):
        return None
    path = path_for(job.storage_key)
    return path if path.is_file() else None


# --- the periodic job ----------------------------------------------------------------------------


def purge_expired(now: datetime) -> int:
    """Delete the files of ready jobs past their expiry (rows marked ``purged``, committed before
    the files go), and the temporary files of failed jobs. A second run finds nothing."""
    jobs = db.session.scalars(select(ExportJob).where(ExportJob.status == "ready", ExportJob.expires_at <= now)
                              .order_by(ExportJob.id)).all()
    keys = [job.storage_key for job in jobs if job.storage_key]
    for job in jobs:
        job.status, job.purged_at = "purged", now
    db.session.commit()
    for key in keys:
        try:
            path_for(key).unlink(missing_ok=True)
        except (OSError, ValueError):
            log.exception("could not remove the export file %s", key)
    return len(jobs)


def _remove_stale_parts(now: datetime) -> None:
    """Temporary files left by a worker that died, older than STALLED_AFTER."""
    folder = export_folder()
    if not folder.is_dir():
        return
    cutoff = (now - STALLED_AFTER).timestamp()
    for path in folder.glob(".*.part"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
        except OSError:
            log.exception("could not remove the temporary export file %s", path)


def requeue_stalled(now: datetime) -> list[int]:
    """Jobs to hand to a worker again: queued and never started, or running with a heartbeat older
    than STALLED_AFTER (its worker died). After MAX_ATTEMPTS a job fails for good."""
    stalled = db.session.scalars(select(ExportJob).where(
        ExportJob.status == "running", ExportJob.heartbeat_at <= now - STALLED_AFTER)).all()
    for job in stalled:
        if job.attempts >= MAX_ATTEMPTS:
            job.status, job.finished_at = "failed", now
            job.error = f"interrompu {job.attempts} fois"
        else:
            job.status = "queued"
    db.session.commit()
    ids = db.session.scalars(select(ExportJob.id).where(
        ExportJob.status == "queued",
        or_(ExportJob.created_at <= now - UNSTARTED_AFTER, ExportJob.attempts > 0))
        .order_by(ExportJob.id)).all()
    return list(ids)


def tend(now: datetime) -> str:
    """The hourly job: purge expired files, queue again the jobs never started or abandoned."""
    purged = purge_expired(now)
    _remove_stale_parts(now)
    again = [job_id for job_id in requeue_stalled(now) if dispatch(job_id)]
    return f"{purged} export(s) supprimé(s), {len(again)} export(s) remis en file"
