"""The audit trail of administration actions: one ``audit_event`` row per action (who, what, on
what, before, after), written in the transaction of the action, listed on the audit page."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, func, select

from instruction.accounts.models import ROLE_LABELS, User
from instruction.dossiers.models import AuditEvent
from instruction.extensions import db
from instruction.web.filters import datetime_fr

# What each administration action is called on the audit page.
ACTION_LABELS = {
    "approve_account": "Compte validé",
    "refuse_account": "Compte refusé",
    "invite": "Invitation envoyée",
    "resend_invitation": "Invitation renvoyée",
    "change_role": "Rôle modifié",
    "deactivate": "Compte désactivé",
    "reactivate": "Compte réactivé",
    "attach_agent": "Agent rattaché à une collectivité",
    "detach_agent": "Agent détaché de sa collectivité",
    "create_sivos": "SIVOS créé",
    "update_sivos": "SIVOS modifié",
    "import_sivos": "SIVOS importés (CSV)",
    "change_ville_centre": "Ville centre modifiée",
    "refresh_territory": "Données de référence mises à jour",
    "create_campaign": "Campagne créée",
    "change_campaign_dates": "Dates de campagne modifiées",
    "extend_deadline": "Date limite d'un dossier prolongée",
    "update_settings": "Identité du service modifiée",
    "export_personal_data": "Données personnelles exportées",
    "erase_personal_data": "Données personnelles effacées (pseudonymisation)",
}
SUBJECT_LABELS = {
    "user": "Compte",
    "collectivite": "Collectivité",
    "territory": "Référentiel territorial",
    "campaign": "Campagne",
    "dossier": "Dossier",
    "settings": "Identité du service",
}


def record(actor: User, action: str, *, subject_kind: str, subject_id: int | None, label: str,
           now: datetime, before: dict | None = None, after: dict | None = None,
           reason: str | None = None) -> AuditEvent:
    """Add the event to the caller's transaction (never commits)."""
    event = AuditEvent(actor_id=actor.id, action=action, at=now, subject_kind=subject_kind,
                       subject_id=subject_id, subject_label=label[:300], before=before, after=after,
                       reason=(reason or "").strip() or None)
    db.session.add(event)
    return event


def admin_events_query(*, action: str | None = None, actor_id: int | None = None,
                       subject_kind: str | None = None, text: str | None = None,
                       since: datetime | None = None, until: datetime | None = None) -> Select:
    """Administration events (those with a subject), newest first, filtered."""
    query = select(AuditEvent).where(AuditEvent.subject_kind.is_not(None))
    if action:
        query = query.where(AuditEvent.action == action)
    if actor_id:
        query = query.where(AuditEvent.actor_id == actor_id)
    if subject_kind:
        query = query.where(AuditEvent.subject_kind == subject_kind)
    if text:
        query = query.where(func.lower(AuditEvent.subject_label).contains(text.strip().lower(),
                                                                           autoescape=True))
    if since:
        query = query.where(AuditEvent.at >= since)
    if until:
        query = query.where(AuditEvent.at < until)
    return query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())


FIELD_LABELS = {
    "role": "rôle",
    "active": "actif",
    "approved": "validé",
    "collectivite": "collectivité",
    "deadline": "date limite",
    "opens_at": "ouverture",
    "deadline_at": "date limite",
    "ville_centre": "ville centre",
    "name": "nom",
    "siren": "SIREN",
    "epci": "EPCI",
    "communes": "communes membres",
    "created": "créés",
    "updated": "mis à jour",
    "count": "nombre",
    "campaign": "campagne",
    "parameters": "jeu de paramètres",
    "file": "fichier",
}


def _value_fr(name: str, value) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "oui" if value else "non"
    if name == "role":
        return ROLE_LABELS.get(value, value)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{FIELD_LABELS.get(k, k)} {v}" for k, v in value.items())
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == "T":
        try:
            return datetime_fr(datetime.fromisoformat(value))
        except ValueError:
            return value
    return str(value)


def describe(values: dict | None) -> list[tuple[str, str]]:
    """``before`` or ``after`` as French (label, value) pairs for the audit page."""
    return [(FIELD_LABELS.get(name, name), _value_fr(name, value)) for name, value in (values or {}).items()]
