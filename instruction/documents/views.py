from flask import Blueprint, abort
from flask_login import login_required

bp = Blueprint("documents", __name__, url_prefix="/documents")


@bp.route("/<int:document_id>/telecharger")
@login_required
def download(document_id: int):
    abort(404)


@bp.route("/<int:document_id>/apercu")
@login_required
def preview(document_id: int):
    abort(404)
