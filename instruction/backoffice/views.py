from flask import Blueprint, render_template
from flask_login import login_required

bp = Blueprint("backoffice", __name__, url_prefix="/instruction")


@bp.route("/")
@login_required
def queue():
    return render_template("backoffice/queue.html")
