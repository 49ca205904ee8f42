from flask import Blueprint, render_template
from flask_login import login_required

bp = Blueprint("notifications", __name__, url_prefix="/notifications")


@bp.route("/")
@login_required
def index():
    return render_template("notifications/index.html")
