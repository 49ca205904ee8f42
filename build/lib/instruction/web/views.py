from flask import Blueprint, render_template
from flask_login import current_user, login_required

bp = Blueprint("main", __name__)


@bp.route("/")
@login_required
def home():
    """One home page per role."""
    return render_template(f"home/{current_user.role}.html")
