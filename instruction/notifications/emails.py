"""The e-mail of one delivery: French, text and HTML, with the dossier reference and a link."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import format_datetime

from flask import current_app, render_template

from instruction import clock
from instruction.notifications import kinds
from instruction.notifications.models import Delivery, OutboxMessage


def dossier_path(user, dossier_id: int) -> str:
    """Where the recipient sees the dossier: the portal for applicants, the back-office for staff."""
    if user is not None and user.is_staff:
        return f"/instruction/dossiers/{dossier_id}"
    return f"/portail/dossiers/{dossier_id}"


def page_of(message: OutboxMessage) -> str | None:
    """The page of the application a message about no dossier leads to (an export ready), when its
    row names one: a local path only."""
    path = (message.context or {}).get("path")
    if isinstance(path, str) and path.startswith("/") and not path.startswith("//") and "\\" not in path:
        return path
    return None


def link_for(message: OutboxMessage, user) -> str:
    """The absolute link of the e-mail (``BASE_URL`` + path)."""
    context = message.context or {}
    if context.get("url"):  # account e-mails carry their own link
        return context["url"]
    base = current_app.config["BASE_URL"].rstrip("/")
    if own := page_of(message):
        return base + own
    if message.dossier_id is not None:
        return base + dossier_path(user, message.dossier_id)
    if message.kind == "digest":
        return base + "/instruction/"
    return base + "/"


def build_email(message: OutboxMessage, delivery: Delivery) -> EmailMessage:
    config = current_app.config
    context = dict(message.context or {})
    # Everything shown comes from the row (written at the event), never from the live dossier.
    reference = context.get("reference")
    user = delivery.user
    values = {
        "kind": message.kind,
        "context": context,
        "recipient": user,
        "full_name": context.get("full_name") or (user.full_name if user is not None else ""),
        "reference": reference,
        "title": context.get("title") or "",
        "collectivite": context.get("collectivite") or "",
        "reason": context.get("reason"),
        "link": link_for(message, user),
        "base_url": config["BASE_URL"].rstrip("/"),
        "subject": kinds.subject(message.kind, reference, context),
    }
    email = EmailMessage()
    email["Subject"] = values["subject"]
    email["From"] = config["MAIL_FROM"]
    email["To"] = delivery.email
    email["Date"] = format_datetime(clock.now())
    domain = config["MAIL_FROM"].rpartition("@")[2] or "localhost"
    # Stable per delivery: a relay that sees the same e-mail twice can tell.
    stamp = int(message.created_at.timestamp()) if message.created_at else 0
    email["Message-ID"] = f"<notification.{message.id}.{delivery.id}.{stamp}@{domain}>"
    email["Auto-Submitted"] = "auto-generated"
    email.set_content(render_template(f"emails/{message.kind}.txt", **values))
    email.add_alternative(render_template(f"emails/{message.kind}.html", **values), subtype="html")
    return email
