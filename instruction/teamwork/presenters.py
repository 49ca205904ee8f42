"""What the team parts of the back-office pages show (thread, notes, labels, assignment)."""

from __future__ import annotations

from flask import current_app

from instruction.accounts.models import User
from instruction.documents import services as documents
from instruction.dossiers.models import Dossier
from instruction.dossiers.workflow import ASSIGNABLE_ROLES
from instruction.teamwork import services
from instruction.teamwork.forms import AssignForm, LabelPickForm, MessageForm, NoteForm
from instruction.teamwork.models import LABEL_COLOURS


def change_summary(changes: dict[str, set[int]]) -> list[str]:
    """``{"message": {…}, "document": {…}}`` -> ``["2 nouveaux messages", "1 nouvelle pièce"]``."""
    texts = []
    for kind in ("resubmit", "withdraw", "message", "document"):
        if kind not in changes:
            continue
        n = len(changes[kind])
        if kind == "message":
            texts.append("1 nouveau message" if n == 1 else f"{n} nouveaux messages")
        elif kind == "document":
            texts.append("1 nouvelle pièce" if n == 1 else f"{n} nouvelles pièces")
        else:
            texts.append(services.CHANGE_LABELS[kind])
    return texts


def staff_dossier_context(dossier: Dossier, user: User, forms: dict | None = None) -> dict:
    """The team context of the dossier page, computed before this visit is recorded (so what is
    new to this person is marked "nouveau")."""
    changes = services.changes_since_seen(user.id, [dossier.id]).get(dossier.id, {})
    labels = services.labels_of([dossier.id])[dossier.id]
    all_labels = services.all_labels()
    label_form = LabelPickForm(formdata=None)
    label_form.label_id.choices = [(label.id, label.name) for label in all_labels
                                   if label.id not in {x.id for x in labels}]
    assign_form = AssignForm(formdata=None, assignee_id=dossier.assigned_to_id)
    assign_form.assignee_id.choices = [(u.id, u.full_name) for u in services.instructors()]
    context = {
        "notes": services.notes_of(dossier.id),
        "labels": labels,
        "following": services.is_following(dossier.id, user.id),
        "changes": change_summary(changes),
        "new_documents": changes.get("document", set()),
        "new_messages": changes.get("message", set()),
        "can_label": user.role in ASSIGNABLE_ROLES,
        "can_assign": user.role in ASSIGNABLE_ROLES,
        "message_form": MessageForm(formdata=None),
        "note_form": NoteForm(formdata=None),
        "label_form": label_form,
        "assign_form": assign_form,
        "colours": LABEL_COLOURS,
        "max_upload": documents.megabytes(current_app.config["MAX_UPLOAD_BYTES"]),
    }
    context.update(forms or {})
    return {"team": context}
