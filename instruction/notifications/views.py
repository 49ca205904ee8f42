"""In-app notifications: the current user's deliveries, newest first, marked read on request."""

from __future__ import annotations

from flask import Blueprint, abort, has_request_context, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import func, select
from sqlalchemy.orm import contains_eager

from instruction import clock
from instruction.extensions import db
from instruction.notifications import kinds, services
from instruction.notifications.emails import dossier_path, page_of
from instruction.notifications.models import Delivery, OutboxMessage
from instruction.web.actions import perform
from instruction.web.numbers import page_number

bp = Blueprint("notifications", __name__, url_prefix="/notifications")
PER_PAGE = 30


def _mine():
    return (Delivery.user_id == current_user.id) & OutboxMessage.kind.not_in(kinds.ACCOUNT_KINDS)


def unread_count() -> int:
    """Unread notifications of the current user, for the navbar badge (0 when logged out)."""
    if not has_request_context() or not current_user.is_authenticated:
        return 0
    return db.session.scalar(select(func.count(Delivery.id)).join(Delivery.message)
                             .where(_mine(), Delivery.read_at.is_(None))) or 0


@bp.route("/")
@login_required
def index():
    page = db.paginate(
        select(Delivery).join(Delivery.message).options(contains_eager(Delivery.message))
        .where(_mine()).order_by(OutboxMessage.created_at.desc(), Delivery.id.desc()),
        page=page_number(request.args.get("page")), per_page=PER_PAGE, error_out=False)
    items = [
        {
            "delivery": d,
            "label": kinds.label(d.message.kind),
            "reference": (d.message.context or {}).get("reference"),
            "has_link": d.message.dossier_id is not None or d.message.kind == "digest" or page_of(d.message),
            "reason": (d.message.context or {}).get("reason"),
        }
        for d in page.items
    ]
    return render_template("notifications/index.html", page=page, items=items)


def _mark_read(delivery_id: int) -> Delivery:
    delivery = db.session.get(Delivery, delivery_id)
    if delivery is None or delivery.user_id != current_user.id:
        abort(404)
    perform(services.mark_read, delivery, now=clock.now())
    return delivery


@bp.route("/<int:delivery_id>/ouvrir", methods=["POST"])
@login_required
def follow(delivery_id: int):
    """Follow a notification's link, marking it read on the way (a POST: a GET never writes)."""
    message = _mark_read(delivery_id).message
    if own := page_of(message):
        return redirect(own)
    if message.dossier_id is not None:
        return redirect(dossier_path(current_user, message.dossier_id))
    return redirect(url_for("backoffice.queue") if message.kind == "digest" else url_for("notifications.index"))


@bp.route("/<int:delivery_id>/lue", methods=["POST"])
@login_required
def mark_read(delivery_id: int):
    _mark_read(delivery_id)
    return redirect(url_for("notifications.index", page=page_number(request.form.get("page"))))


@bp.route("/tout-lu", methods=["POST"])
@login_required
def mark_all_read():
    perform(services.mark_all_read, current_user, now=clock.now())
    return redirect(url_for("notifications.index"))
