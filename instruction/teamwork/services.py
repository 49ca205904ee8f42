"""Team operations on a dossier: messages, read receipts, notes, labels, assignment, following,
"last seen". None changes the dossier's state (the request for documents, which does, stays the
workflow's verb in ``dossiers.services``). Each takes ``now`` from its caller, flushes and never
commits; notifications are outbox rows of the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, literal, select, union_all, update
from sqlalchemy.exc import IntegrityError

from instruction.accounts.models import User
from instruction.accounts.services import approved_agents_query
from instruction.db import rowcount
from instruction.documents import services as documents
from instruction.dossiers.access import can_see
from instruction.dossiers.models import (
    AuditEvent,
    Document,
    Dossier,
    DossierFollower,
    DossierMessage,
)
from instruction.dossiers.team import team_of
from instruction.dossiers.workflow import ASSIGNABLE_ROLES
from instruction.errors import Refusal
from instruction.extensions import db
from instruction.notifications import services as notifications
from instruction.notifications.models import Delivery, OutboxMessage
from instruction.rules.formatting import format_date_fr
from instruction.rules.parameters import PARIS, paris_date
from instruction.storage.files import remove_files
from instruction.teamwork.models import (
    LABEL_COLOURS,
    MESSAGE_EMAIL_CHOICES,
    DossierLabel,
    DossierNote,
    DossierView,
    Label,
    StaffPreference,
)

MAX_MESSAGE = 10_000
MAX_NOTE = 5_000
MAX_FILES = 10
GROUP_WINDOW = timedelta(hours=1)  # at most one e-mail per dossier and hour to a staff member
STAFF_GROUPED_KIND = "messages_to_staff"
APPLICANT_KIND = "message_to_applicant"
REGION = "Région Bourgogne-Franche-Comté"


class TeamRefusal(Refusal):
    status = 400


class TeamForbidden(Refusal):
    status = 403


class TeamConflict(Refusal):
    status = 409


def _audit(dossier: Dossier, actor: User, action: str, now: datetime, reason: str | None = None) -> None:
    """A team action in the dossier's history (no state change), for staff eyes only."""
    db.session.add(AuditEvent(dossier=dossier, actor=actor, action=action, from_state=dossier.state,
                              to_state=dossier.state, at=now, reason=reason))


def _require_staff(actor: User, roles: tuple[str, ...] = ("instructor", "finance", "admin")) -> None:
    if not actor.is_staff or actor.role not in roles:
        raise TeamForbidden("Votre rôle ne permet pas cette action sur le dossier.")


# --- messages ------------------------------------------------------------------------------------


@dataclass
class Posted:
    message: DossierMessage
    stored: list[Document] = field(default_factory=list)

    @property
    def keys(self) -> list[str]:
        return [d.storage_key for d in self.stored]


def _message_entry(message: DossierMessage) -> dict:
    """What the e-mail shows of a message, frozen when it is queued."""
    author = message.author
    local = message.created_at.astimezone(PARIS)
    return {"id": message.id, "author": author.full_name if author else REGION,
            "at": f"{format_date_fr(local.date())} à {local:%H:%M}", "body": message.body,
            "attachments": [d.original_name for d in message.attachments]}


def post_message(dossier: Dossier, author: User, body: str, files: list[tuple[str | None, bytes]], *,
                 max_bytes: int, now: datetime) -> Posted:
    """A message of the thread, with its attachments (all accepted, or none: the message is not
    sent while one file is refused). The other side is told by e-mail; the author never is. The
    caller commits (the unit of work removes the files of a rollback)."""
    if not can_see(author, dossier) or dossier.state == "draft":
        raise TeamForbidden("Ce dossier ne vous est pas accessible.")
    if author.role == "applicant" and not author.is_approved:
        raise TeamForbidden("Votre compte doit être validé avant d'écrire à la Région.")
    text = (body or "").replace("\r\n", "\n").strip()
    if not text and not files:
        raise TeamRefusal("Écrivez un message ou joignez un fichier.")
    if len(text) > MAX_MESSAGE:
        raise TeamRefusal(f"Le message est trop long ({len(text)} caractères) : {MAX_MESSAGE} au plus.")
    if len(files) > MAX_FILES:
        raise TeamRefusal(f"Joignez au plus {MAX_FILES} fichiers à un message.")
    checked, rejected = [], []
    for name, data in files:
        try:
            checked.append(documents.check_file(name, data, max_bytes))
        except documents.UploadRejected as error:
            rejected.append(str(error))
    if rejected:
        raise TeamRefusal(" ".join([*rejected, "Le message n'est pas envoyé : retirez ou corrigez le "
                                               "fichier refusé, puis envoyez-le à nouveau."]))
    message = DossierMessage(dossier=dossier, author=author, body=text, kind="message",
                             from_staff=author.is_staff, created_at=now)
    db.session.add(message)
    db.session.flush()
    posted = Posted(message)
    try:
        for file in checked:
            document = documents.store(dossier, file, line=None, uploader=author, now=now)
            document.message = message
            posted.stored.append(document)
        db.session.flush()
    except Exception:
        remove_files(posted.keys)
        raise
    if author.is_staff:
        _notify_applicants(dossier, message)
    else:
        dossier.updated_at = now
        notify_staff_of_message(dossier, message, now=now)
    return posted


def _notify_applicants(dossier: Dossier, message: DossierMessage) -> None:
    """Each staff message: one e-mail to each approved agent of the collectivité."""
    agents = [u for u in db.session.scalars(approved_agents_query(dossier.collectivite_id))
              if u.id != message.author_id]
    notifications.queue(APPLICANT_KIND, key=f"message:{message.id}", dossier=dossier, recipients=agents,
                        context={"reference": dossier.reference, "title": dossier.title,
                                 "messages": [{**_message_entry(message), "author": REGION}]},
                        now=message.created_at)


def preference(user: User) -> str:
    row = db.session.get(StaffPreference, user.id)
    return row.message_emails if row is not None else "grouped"


def set_preference(user: User, value: str) -> None:
    if not user.is_staff:
        raise TeamForbidden("Seul le personnel de la Région choisit ces courriels.")
    if value not in MESSAGE_EMAIL_CHOICES:
        raise TeamRefusal("Choix inconnu.")
    row = db.session.get(StaffPreference, user.id)
    if row is None:
        db.session.add(StaffPreference(user_id=user.id, message_emails=value))
    else:
        row.message_emails = value


def notify_staff_of_message(dossier: Dossier, message: DossierMessage, *, now: datetime) -> None:
    """Tell the dossier's team of an applicant's message, grouped: at most one e-mail per dossier
    and hour to each staff member (the messages that arrive meanwhile join the e-mail waiting to
    go), or nothing now for those who chose the daily digest (instructors only: the digest is
    theirs)."""
    entry = _message_entry(message)
    for user in team_of(dossier):
        if user.id == message.author_id or not user.active:
            continue
        if user.role == "instructor" and preference(user) == "digest":
            continue
        _group_for(dossier, user, entry, now)


def _group_for(dossier: Dossier, user: User, entry: dict, now: datetime) -> None:
    latest = db.session.execute(
        select(OutboxMessage, Delivery).join(Delivery, Delivery.message_id == OutboxMessage.id)
        .where(OutboxMessage.kind == STAFF_GROUPED_KIND, OutboxMessage.dossier_id == dossier.id,
               Delivery.user_id == user.id)
        .order_by(OutboxMessage.id.desc()).limit(1)
        .with_for_update(of=Delivery)
    ).first()
    if latest is not None:
        outbox, delivery = latest
        if delivery.status == "pending" and delivery.attempts == 0:  # not sent yet: it joins
            context = dict(outbox.context)
            context["messages"] = [*context.get("messages", []), entry]
            outbox.context = context
            return
        if delivery.status == "sent" and delivery.sent_at is not None:
            due = max(now, delivery.sent_at + GROUP_WINDOW)
        elif delivery.status == "failed":
            due = now
        else:  # being sent right now
            due = now + GROUP_WINDOW
    else:
        due = now
    queued = notifications.queue(
        STAFF_GROUPED_KIND, key=f"messages:dossier:{dossier.id}:user:{user.id}:message:{entry['id']}",
        dossier=dossier, recipients=[user],
        context={"reference": dossier.reference, "title": dossier.title, "messages": [entry]}, now=now)
    if queued is not None and due > now:
        for delivery in queued.deliveries:
            delivery.next_attempt_at = due
        # The periodic re-dispatch sends it once due. Written once the row exists: None given to a
        # new row would be replaced by the column's default (now), and the e-mail would wait for
        # NOTIFICATION_REDISPATCH_AFTER instead.
        db.session.flush()
        queued.dispatched_at = None


def mark_read(dossier: Dossier, reader: User, *, now: datetime) -> int:
    """The reader opened the thread: the other side's unread messages are read now (one UPDATE;
    the first reader wins). Returns how many."""
    if not can_see(reader, dossier):
        return 0
    result = db.session.execute(
        update(DossierMessage)
        .where(DossierMessage.dossier_id == dossier.id, DossierMessage.read_at.is_(None),
               DossierMessage.from_staff.is_(not reader.is_staff))
        .values(read_at=now, read_by_id=reader.id)
        .execution_options(synchronize_session=False))
    return rowcount(result)


def unread_for_applicant(dossier_ids: list[int]) -> dict[int, int]:
    """Staff messages not yet read by the applicant, per dossier."""
    if not dossier_ids:
        return {}
    rows = db.session.execute(
        select(DossierMessage.dossier_id, func.count())
        .where(DossierMessage.dossier_id.in_(dossier_ids), DossierMessage.from_staff.is_(True),
               DossierMessage.read_at.is_(None), DossierMessage.kind == "message")
        .group_by(DossierMessage.dossier_id)).all()
    return dict(rows)


def due_on_text(message: DossierMessage) -> str | None:
    return format_date_fr(message.due_on) if message.due_on else None


# --- private notes -------------------------------------------------------------------------------


def add_note(dossier: Dossier, author: User, body: str, *, now: datetime) -> DossierNote:
    _require_staff(author)
    if not can_see(author, dossier):
        raise TeamForbidden("Ce dossier ne vous est pas accessible.")
    text = (body or "").replace("\r\n", "\n").strip()
    if not text:
        raise TeamRefusal("La note est vide.")
    if len(text) > MAX_NOTE:
        raise TeamRefusal(f"La note est trop longue ({len(text)} caractères) : {MAX_NOTE} au plus.")
    note = DossierNote(dossier_id=dossier.id, author=author, body=text, created_at=now)
    db.session.add(note)
    db.session.flush()
    _audit(dossier, author, "note_added", now, f"Note n°{note.id}")
    return note


def notes_of(dossier_id: int) -> list[DossierNote]:
    return list(db.session.scalars(select(DossierNote).where(DossierNote.dossier_id == dossier_id)
                                   .order_by(DossierNote.id)))


# --- labels --------------------------------------------------------------------------------------


def _label_values(name: str, colour: str) -> tuple[str, str]:
    name = " ".join((name or "").split())
    if not name:
        raise TeamRefusal("Donnez un nom à l'étiquette.")
    if len(name) > 60:
        raise TeamRefusal("Le nom d'une étiquette fait au plus 60 caractères.")
    if colour not in LABEL_COLOURS:
        raise TeamRefusal("Choisissez une couleur dans la liste.")
    return name, colour


def _unique_name(name: str, label_id: int | None = None) -> None:
    clash = db.session.scalar(select(Label.id).where(func.lower(Label.name) == name.lower()))
    if clash is not None and clash != label_id:
        raise TeamConflict(f"Une étiquette « {name} » existe déjà.")


def create_label(actor: User, name: str, colour: str, *, now: datetime) -> Label:
    _require_staff(actor, ("admin",))
    name, colour = _label_values(name, colour)
    _unique_name(name)
    label = Label(name=name, colour=colour, created_at=now)
    db.session.add(label)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:
        raise TeamConflict(f"Une étiquette « {name} » existe déjà.") from None
    return label


def update_label(actor: User, label: Label, name: str, colour: str) -> None:
    _require_staff(actor, ("admin",))
    name, colour = _label_values(name, colour)
    _unique_name(name, label.id)
    label.name, label.colour = name, colour


def delete_label(actor: User, label: Label) -> None:
    """Removes the label from every dossier (their histories keep that it was put and taken off)."""
    _require_staff(actor, ("admin",))
    db.session.execute(delete(DossierLabel).where(DossierLabel.label_id == label.id))
    db.session.delete(label)


def all_labels() -> list[Label]:
    return list(db.session.scalars(select(Label).order_by(func.lower(Label.name))))


def labels_of(dossier_ids: list[int]) -> dict[int, list[Label]]:
    """The labels of each dossier, in one query."""
    result: dict[int, list[Label]] = {i: [] for i in dossier_ids}
    if not dossier_ids:
        return result
    rows = db.session.execute(
        select(DossierLabel.dossier_id, Label).join(Label, Label.id == DossierLabel.label_id)
        .where(DossierLabel.dossier_id.in_(dossier_ids)).order_by(func.lower(Label.name))).all()
    for dossier_id, label in rows:
        result[dossier_id].append(label)
    return result


def add_label(dossier: Dossier, label: Label, actor: User, *, now: datetime) -> bool:
    """Put ``label`` on the dossier (audited); False if it was already there."""
    _require_staff(actor, ASSIGNABLE_ROLES)
    if not can_see(actor, dossier):
        raise TeamForbidden("Ce dossier ne vous est pas accessible.")
    if db.session.get(DossierLabel, (dossier.id, label.id)) is not None:
        return False
    try:
        with db.session.begin_nested():
            db.session.add(DossierLabel(dossier_id=dossier.id, label_id=label.id, added_by_id=actor.id,
                                        added_at=now))
    except IntegrityError:  # put at the same moment by a colleague
        return False
    _audit(dossier, actor, "label_added", now, label.name)
    return True


def remove_label(dossier: Dossier, label: Label, actor: User, *, now: datetime) -> bool:
    _require_staff(actor, ASSIGNABLE_ROLES)
    result = db.session.execute(delete(DossierLabel).where(
        DossierLabel.dossier_id == dossier.id, DossierLabel.label_id == label.id))
    if not rowcount(result):
        return False
    _audit(dossier, actor, "label_removed", now, label.name)
    return True


# --- assignment and following --------------------------------------------------------------------


def assign_to(dossier: Dossier, assignee: User, actor: User, *, now: datetime) -> bool:
    """Hand the dossier to an instructor (or an admin): audited, and the assignee is told unless
    they assigned it to themselves. False if it was theirs already."""
    _require_staff(actor, ASSIGNABLE_ROLES)
    if not can_see(actor, dossier):
        raise TeamForbidden("Ce dossier ne vous est pas accessible.")
    if assignee.role not in ASSIGNABLE_ROLES or not assignee.active:
        raise TeamRefusal("Un dossier ne peut être attribué qu'à un instructeur actif.")
    if dossier.assigned_to_id == assignee.id:
        return False
    dossier.assigned_to = assignee
    # The id, not the name: the audit trail is append-only and keeps no personal data.
    _audit(dossier, actor, "assign", now, f"Attribué à l'instructeur n°{assignee.id}")
    db.session.flush()
    if assignee.id != actor.id:
        event_id = db.session.scalar(select(func.max(AuditEvent.id)).where(AuditEvent.dossier_id == dossier.id))
        notifications.queue(
            "assigned", key=f"assigned:dossier:{dossier.id}:event:{event_id}", dossier=dossier,
            recipients=[assignee],
            context={"reference": dossier.reference, "title": dossier.title, "by": actor.full_name,
                     "collectivite": dossier.collectivite.name, "state": dossier.state_label}, now=now)
    return True


def instructors() -> list[User]:
    return list(db.session.scalars(select(User).where(User.role.in_(ASSIGNABLE_ROLES),
                                                      User.active.is_(True)).order_by(User.full_name)))


def follow(dossier: Dossier, user: User, *, now: datetime) -> bool:
    _require_staff(user)
    if not can_see(user, dossier):
        raise TeamForbidden("Ce dossier ne vous est pas accessible.")
    if db.session.get(DossierFollower, (dossier.id, user.id)) is not None:
        return False
    try:
        with db.session.begin_nested():
            db.session.add(DossierFollower(dossier_id=dossier.id, user_id=user.id, since=now))
    except IntegrityError:
        return False
    return True


def unfollow(dossier: Dossier, user: User) -> bool:
    _require_staff(user)
    result = db.session.execute(delete(DossierFollower).where(
        DossierFollower.dossier_id == dossier.id, DossierFollower.user_id == user.id))
    return bool(rowcount(result))


def is_following(dossier_id: int, user_id: int) -> bool:
    return db.session.get(DossierFollower, (dossier_id, user_id)) is not None


# --- what changed since I looked -----------------------------------------------------------------

CHANGE_LABELS = {
    "resubmit": "complété",
    "message": "nouveau message",
    "document": "nouvelle pièce",
    "withdraw": "retiré",
}


def last_seen(user_id: int, dossier_id: int) -> datetime | None:
    row = db.session.get(DossierView, (user_id, dossier_id))
    return row.seen_at if row is not None else None


def mark_seen(dossier: Dossier, user: User, *, now: datetime) -> None:
    """Record that ``user`` opened the dossier now (one row per person and dossier)."""
    result = db.session.execute(
        update(DossierView).where(DossierView.user_id == user.id, DossierView.dossier_id == dossier.id)
        .values(seen_at=now).execution_options(synchronize_session=False))
    if rowcount(result):
        return
    try:
        with db.session.begin_nested():
            db.session.add(DossierView(user_id=user.id, dossier_id=dossier.id, seen_at=now))
    except IntegrityError:  # the same person in two tabs
        db.session.execute(
            update(DossierView).where(DossierView.user_id == user.id, DossierView.dossier_id == dossier.id)
            .values(seen_at=now).execution_options(synchronize_session=False))


def _activity():
    """Every change an applicant makes after submission: (dossier id, kind, instant, item id)."""
    applicant_documents = (
        select(Document.dossier_id.label("dossier_id"), literal("document").label("kind"),
               Document.uploaded_at.label("at"), Document.id.label("item_id"))
        .join(User, User.id == Document.uploaded_by_id).where(User.role == "applicant"))
    messages = (select(DossierMessage.dossier_id, literal("message"), DossierMessage.created_at,
                       DossierMessage.id).where(DossierMessage.from_staff.is_(False)))
    events = (select(AuditEvent.dossier_id, AuditEvent.action, AuditEvent.at, AuditEvent.id)
              .where(AuditEvent.action.in_(("resubmit", "withdraw"))))
    return union_all(applicant_documents, messages, events).subquery("activity")


def changes_since_seen(user_id: int, dossier_ids: list[int]) -> dict[int, dict[str, set[int]]]:
    """For each dossier: what the applicant changed since ``user_id`` last opened it (or since it
    was submitted, if never), as {kind: {item ids}}. One query for the whole page."""
    if not dossier_ids:
        return {}
    activity = _activity()
    seen = (select(DossierView.dossier_id, DossierView.seen_at)
            .where(DossierView.user_id == user_id).subquery("seen"))
    since = func.coalesce(seen.c.seen_at, Dossier.submitted_at)
    rows = db.session.execute(
        select(activity.c.dossier_id, activity.c.kind, activity.c.item_id)
        .join(Dossier, Dossier.id == activity.c.dossier_id)
        .outerjoin(seen, seen.c.dossier_id == activity.c.dossier_id)
        .where(activity.c.dossier_id.in_(dossier_ids), Dossier.submitted_at.is_not(None),
               activity.c.at > since)).all()
    result: dict[int, dict[str, set[int]]] = {}
    for dossier_id, kind, item_id in rows:
        result.setdefault(dossier_id, {}).setdefault(kind, set()).add(item_id)
    return result


def changed_condition(user_id: int):
    """SQL condition on ``Dossier``: changed by its applicant since ``user_id`` last opened it (for
    the queue's "changed since I looked" filter)."""
    activity = _activity()
    seen_at = (select(DossierView.seen_at).where(DossierView.user_id == user_id,
                                                 DossierView.dossier_id == Dossier.id)
               .correlate(Dossier).scalar_subquery())
    return select(activity.c.dossier_id).where(
        and_(activity.c.dossier_id == Dossier.id,
             activity.c.at > func.coalesce(seen_at, Dossier.submitted_at))).correlate(Dossier).exists()


def request_due_text(dossier: Dossier) -> str | None:
    """The deadline of the dossier's latest request for documents, in French."""
    requests = [m for m in dossier.messages if m.kind == "request_documents"]
    if requests and requests[-1].due_on:
        return format_date_fr(requests[-1].due_on)
    return None


def today(now: datetime):
    return paris_date(now)


# --- the applicant's side ------------------------------------------------------------------------


@dataclass(frozen=True)
class Waiting:
    """A dossier that waits for its applicant, why, and until when."""

    dossier: Dossier
    reasons: tuple[str, ...]
    due_on: str | None


def waiting_for_applicant(dossiers: list[Dossier]) -> list[Waiting]:
    """The portal home's banner: documents requested (with the date to answer by) and messages
    of the Region not read yet."""
    unread = unread_for_applicant([d.id for d in dossiers if d.state != "draft"])
    result = []
    for dossier in dossiers:
        reasons = []
        due = None
        if dossier.state == "incomplete":
            reasons.append("des pièces vous sont demandées")
            due = request_due_text(dossier)
        if n := unread.get(dossier.id):
            reasons.append("la Région vous a écrit" if n == 1 else f"la Région vous a écrit ({n} messages)")
        if reasons:
            result.append(Waiting(dossier, tuple(reasons), due))
    return result
