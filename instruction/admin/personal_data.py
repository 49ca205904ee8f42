"""The personal data held on one person: export (for a request under article 15 of the GDPR) and
erasure by pseudonymisation (article 17).

Erasure rewrites the account row and what names the person outside the legal record: their e-mail
address on the deliveries and the content of their account e-mails in the outbox. The audit trail
is never rewritten (append-only, hash-chained): its rows keep pointing at the same account id, whose
row now carries a pseudonym, so the chain stays intact and "who did what" stays provable. Messages
and documents of dossiers are part of the administrative record and stay, attributed to the
pseudonym. Services never commit.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import delete, or_, select, update
from werkzeug.security import generate_password_hash

from instruction.accounts.models import RecoveryCode, User
from instruction.accounts.services import AccountError, end_all_sessions
from instruction.dossiers.models import AuditEvent, Document, Dossier, DossierMessage
from instruction.extensions import db
from instruction.notifications.models import Delivery, OutboxMessage


def pseudonym(user: User) -> tuple[str, str]:
    """The name and the address an erased account carries (unique, never deliverable)."""
    return f"Personne effacée n° {user.id}", f"efface-{user.id}@efface.invalid"


def is_erased(user: User) -> bool:
    return user.email == pseudonym(user)[1]


def _instant(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def export(user: User, *, now: datetime) -> dict:
    """Everything the application holds on ``user``, as plain JSON-ready data (French keys)."""
    collectivite = user.collectivite
    dossier_ref: dict[int | None, str | None] = {d.id: d.reference for d in db.session.scalars(select(Dossier).where(
        or_(Dossier.id.in_(select(AuditEvent.dossier_id).where(AuditEvent.actor_id == user.id)),
            Dossier.id.in_(select(DossierMessage.dossier_id).where(DossierMessage.author_id == user.id)),
            Dossier.id.in_(select(Document.dossier_id).where(Document.uploaded_by_id == user.id)),
            Dossier.created_by_id == user.id)))}
    return {
        "export": {"genere_le": now.isoformat(), "compte_id": user.id},
        "compte": {
            "adresse_electronique": user.email, "nom": user.full_name, "role": user.role_label,
            "collectivite": ({"nom": collectivite.name, "code": collectivite.code} if collectivite else None),
            "actif": user.active, "cree_le": _instant(user.created_at),
            "adresse_confirmee_le": _instant(user.email_confirmed_at),
            "valide_le": _instant(user.approved_at), "derniere_connexion": _instant(user.last_login_at),
            "double_authentification_depuis": _instant(user.totp_enabled_at),
        },
        "dossiers_crees": [{"reference": d.reference, "etat": d.state, "cree_le": _instant(d.created_at)}
                           for d in db.session.scalars(select(Dossier).where(Dossier.created_by_id == user.id)
                                                       .order_by(Dossier.id))],
        "messages_ecrits": [{"dossier": dossier_ref.get(m.dossier_id), "ecrit_le": _instant(m.created_at),
                             "texte": m.body}
                            for m in db.session.scalars(select(DossierMessage).where(
                                DossierMessage.author_id == user.id).order_by(DossierMessage.id))],
        "pieces_deposees": [{"dossier": dossier_ref.get(d.dossier_id), "nom": d.original_name,
                             "deposee_le": _instant(d.uploaded_at), "octets": d.size_bytes}
                            for d in db.session.scalars(select(Document).where(
                                Document.uploaded_by_id == user.id).order_by(Document.id))],
        "actions_journalisees": [{"le": _instant(e.at), "action": e.action, "dossier": dossier_ref.get(e.dossier_id),
                                  "objet": e.subject_label, "motif": e.reason}
                                 for e in db.session.scalars(select(AuditEvent).where(
                                     AuditEvent.actor_id == user.id).order_by(AuditEvent.id))],
        "actions_le_concernant": [{"le": _instant(e.at), "action": e.action, "par": e.actor_id,
                                   "avant": e.before, "apres": e.after, "motif": e.reason}
                                  for e in db.session.scalars(select(AuditEvent).where(
                                      AuditEvent.subject_kind == "user", AuditEvent.subject_id == user.id)
                                      .order_by(AuditEvent.id))],
        "courriels": [{"type": d.message.kind, "adresse": d.email, "statut": d.status,
                       "cree_le": _instant(d.message.created_at), "envoye_le": _instant(d.sent_at)}
                      for d in db.session.scalars(select(Delivery).where(Delivery.user_id == user.id)
                                                  .order_by(Delivery.id))],
    }


def erase(user: User, actor: User, *, now: datetime) -> None:
    """Pseudonymise ``user``: name, address, password, second factor, last login; their sessions
    end and the account can no longer be used. Idempotent refusal: erased once is enough."""
    if actor.id == user.id:
        raise AccountError("Vous ne pouvez pas effacer votre propre compte.")
    if is_erased(user):
        raise AccountError("Les données personnelles de ce compte ont déjà été effacées.")
    name, address = pseudonym(user)
    user.full_name, user.email, user.active = name, address, False
    user.password_hash = generate_password_hash(secrets.token_urlsafe(32))
    user.totp_secret = user.totp_enabled_at = user.totp_last_step = None
    user.last_login_at = None
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    db.session.execute(update(Delivery).where(Delivery.user_id == user.id, Delivery.status == "pending")
                       .values(status="failed", next_attempt_at=None, last_error="Données personnelles effacées")
                       .execution_options(synchronize_session=False))
    db.session.execute(update(Delivery).where(Delivery.user_id == user.id).values(email=address)
                       .execution_options(synchronize_session=False))
    db.session.execute(update(OutboxMessage)
                       .where(OutboxMessage.key.startswith(f"account:{user.id}:", autoescape=True))
                       .values(context={"efface": True}).execution_options(synchronize_session=False))
    db.session.flush()
    end_all_sessions(user)
