"""Exports built by the worker: requested from the page a large export shows, followed on a page
with a progress bar, downloaded by their author alone (404 for anyone else). Staff only: an
anonymous visitor goes to the login page, an applicant gets a 404 (not told they exist)."""

from __future__ import annotations

from flask import Blueprint, abort, jsonify, redirect, render_template, request, send_file, url_for
from flask_login import current_user

from instruction import clock
from instruction.backoffice import queries
from instruction.exports import services
from instruction.exports.models import ExportJob
from instruction.rules.formatting import format_integer
from instruction.web.access import staff_only
from instruction.web.actions import attempt

bp = Blueprint("exports", __name__, url_prefix="/instruction/exports")

MIMETYPES = {"csv": "text/csv", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


bp.before_request(staff_only(404))


def _job(job_id: int) -> ExportJob:
    job = services.job_of(current_user, job_id)
    if job is None:
        abort(404)
    return job


def progress_text(job: ExportJob) -> str:
    if job.status == "queued":
        return "En attente d'un agent de traitement…"
    total = job.rows_total or 0
    done = min(job.rows_done, total) if total else job.rows_done
    percent = f" ({done * 100 // total} %)" if total else ""
    return f"{format_integer(done)} ligne(s) écrite(s) sur {format_integer(total)}{percent}"


@bp.context_processor
def helpers():
    return {"progress_text": progress_text, "format_labels": services.FORMAT_LABELS, "tabs": queries.TABS}


@bp.route("/")
def index():
    return render_template("exports/index.html", jobs=services.jobs_of(current_user), now=clock.now())


@bp.route("/", methods=["POST"])
def request_export():
    """A job for the view the form carries (the queue's parameters, read as the queue reads them)."""
    options = queries.FilterOptions.load()
    f = queries.parse_filters(request.form, options, role=current_user.role, user_id=current_user.id)
    fmt = (request.form.get("format") or "").strip()
    count = queries.tab_counts(f)[f.tab]
    outcome = attempt(services.request_export, current_user._get_current_object(), f, fmt,
                      rows_total=count, now=clock.now())
    if outcome.error is not None:
        page = render_template("exports/confirm.html", count=count, fmt=fmt if fmt in MIMETYPES else "csv",
                               params=services.view_params(f), tab=queries.TABS[f.tab].label,
                               error=outcome.error.message)
        return page, outcome.error.status
    job = outcome.value
    assert job is not None
    services.dispatch(job.id)
    return redirect(url_for("exports.show", job_id=job.id))


@bp.route("/<int:job_id>")
def show(job_id: int):
    job = _job(job_id)
    available = services.ready_file(job, now=clock.now()) is not None
    return render_template("exports/show.html", job=job, available=available)


@bp.route("/<int:job_id>/etat")
def progress(job_id: int):
    """The progress, for the page's script (no script in the page itself: CSP)."""
    job = _job(job_id)
    response = jsonify({"status": job.status, "rows_done": job.rows_done, "rows_total": job.rows_total,
                        "text": progress_text(job)})
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/<int:job_id>/telecharger")
def download(job_id: int):
    job = _job(job_id)
    path = services.ready_file(job, now=clock.now())
    if path is None:
        abort(404, "Cet export n'est pas disponible (en préparation, en échec ou supprimé après sa durée de "
                   "conservation).")
    response = send_file(path, mimetype=MIMETYPES[job.format], as_attachment=True,
                         download_name=job.file_name or f"export.{job.format}", max_age=0)
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
