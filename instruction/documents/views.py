"""Serving stored documents and legal acts: only to the dossier's collectivité and to staff (404
otherwise).

Downloads are always ``attachment``; the preview is ``inline`` with the sniffed content type
(PDF, JPEG or PNG only). Every answer forbids sniffing and runs under a restrictive CSP. The acts'
download is here too (blueprint ``acts``, under ``/actes``): it needs the dossiers' visibility,
and the acts sit below the dossiers.
"""

from flask import Blueprint, Flask, Response, abort, send_file, stream_with_context
from flask_login import current_user, login_required

from instruction import clock
from instruction.acts import services as acts
from instruction.acts.models import LegalAct
from instruction.documents import archive
from instruction.documents.services import ALLOWED
from instruction.dossiers.access import visible_dossier
from instruction.dossiers.models import Document
from instruction.errors import StorageUnavailable
from instruction.extensions import db
from instruction.storage.files import DOWNLOAD_CSP, content_disposition, path_for
from instruction.web.access import found_or_404
from instruction.web.actions import perform

bp = Blueprint("documents", __name__, url_prefix="/documents")
acts_bp = Blueprint("acts", __name__, url_prefix="/actes")

# Chromium's PDF viewer refuses to run in a sandboxed document: the preview is not sandboxed, but
# it may load nothing and run no script of its own.
PREVIEW_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'self'"


@bp.record_once
def _request_size_limit(state) -> None:
    """Bodies a bit larger than one file of MAX_UPLOAD_BYTES are cut at the door with a French 413."""
    app: Flask = state.app
    if app.config.get("MAX_CONTENT_LENGTH") is None:
        app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_UPLOAD_BYTES"] + 1024 * 1024


def _document(document_id: int) -> Document:
    document = db.session.get(Document, document_id)
    if document is None:
        abort(404)
    found_or_404(visible_dossier(current_user, document.dossier_id))  # 404 if not visible
    if document.purged_at is not None:
        abort(404, "Cette pièce a été supprimée à l'issue de sa durée de conservation (dossier clos).")
    return document


def _serve(document: Document, disposition: str):
    try:
        path = path_for(document.storage_key)
    except ValueError:
        abort(404)
    if not path.is_file():
        if not path.parent.is_dir():  # the store itself is gone (unmounted): not the file's fault
            raise StorageUnavailable(f"upload folder {path.parent} is not reachable")
        abort(404)
    response = send_file(path, mimetype=document.content_type, conditional=True, max_age=0,
                         etag=document.sha256)
    response.headers["Content-Disposition"] = content_disposition(disposition, document.original_name)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = DOWNLOAD_CSP if disposition == "attachment" else PREVIEW_CSP
    response.headers["Cache-Control"] = "private, no-cache"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.route("/<int:document_id>/telecharger")
@login_required
def download(document_id: int):
    return _serve(_document(document_id), "attachment")


@bp.route("/<int:document_id>/apercu")
@login_required
def preview(document_id: int):
    document = _document(document_id)
    if document.content_type not in ALLOWED:
        return _serve(document, "attachment")
    return _serve(document, "inline")


@bp.route("/dossiers/<int:dossier_id>/pieces.zip")
@login_required
def dossier_archive(dossier_id: int):
    """Every document and legal act of the dossier in one zip with its manifest, streamed (staff,
    and the dossier's collectivité; 404 for anyone else)."""
    dossier = found_or_404(visible_dossier(current_user, dossier_id))
    for act in archive.unrendered_acts(dossier):  # as at their first download: rendered once, kept
        refusal = perform(acts.ensure_rendered, act, now=clock.now())
        if refusal is not None:
            abort(refusal.status, refusal.message)
    items = archive.entries(dossier)
    response = Response(stream_with_context(archive.stream_zip(items, now=clock.now())),
                        mimetype="application/zip")
    response.headers["Content-Disposition"] = content_disposition("attachment", archive.archive_name(dossier))
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = DOWNLOAD_CSP
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


# --- legal acts ------------------------------------------------------------------------------------


@acts_bp.record_once
def _template_helpers(state) -> None:
    state.app.jinja_env.globals["legal_acts_of"] = acts.acts_of


@acts_bp.route("/<int:act_id>/pdf", endpoint="download")  # url_for("acts.download")
@login_required
def act_download(act_id: int):
    act = db.session.get(LegalAct, act_id)
    if act is None:
        abort(404)
    found_or_404(visible_dossier(current_user, act.dossier_id))  # 404 if not visible
    if act.storage_key is None:  # first download: render once and keep
        refusal = perform(acts.ensure_rendered, act, now=clock.now())
        if refusal is not None:
            abort(refusal.status, refusal.message)
    response = Response(acts.pdf_of(act), mimetype="application/pdf")
    response.headers["Content-Disposition"] = content_disposition("attachment", act.file_name)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = DOWNLOAD_CSP
    response.headers["Cache-Control"] = "private, no-cache"
    response.headers["ETag"] = f'"{act.sha256}"'
    return response
