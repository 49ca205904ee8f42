"""Administration of people: invitations, roles, deactivation, agents of a collectivité.

Each operation checks what it may do, changes the account and writes its audit event in the
caller's transaction (views commit through ``perform``). Deactivating an account keeps its
history (dossiers, events, messages) and ends its sessions: a deactivated account is refused at
login and at its next request (``accounts.views.load_user``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from instruction.accounts import services as accounts
from instruction.accounts.models import ROLE_LABELS, STAFF_ROLES, User
from instruction.accounts.services import AccountError, NotAllowed
from instruction.admin import audit
from instruction.extensions import db
from instruction.notifications import services as notifications
from instruction.territory.models import Collectivite


def label_of(user: User) -> str:
    return f"{user.full_name} <{user.email}>"


def _state(user: User) -> dict:
    return {"role": user.role, "active": user.active,
            "collectivite": user.collectivite.name if user.collectivite else None}


def _require_admin(actor: User) -> None:
    if actor is None or actor.role != "admin" or not actor.active:
        raise NotAllowed("Seul un administrateur de la Région peut faire cela.")


def _not_oneself(actor: User, user: User, what: str) -> None:
    """An admin never demotes nor deactivates themself: the acting admin stays, so the platform
    always keeps at least one active admin."""
    if user.id == actor.id:
        raise NotAllowed(f"Vous ne pouvez pas {what} votre propre compte : demandez-le à un autre "
                         "administrateur.")


def invite_staff(actor: User, *, email: str, full_name: str, role: str, now: datetime) -> User:
    _require_admin(actor)
    if role not in STAFF_ROLES:
        raise AccountError("Choisissez le rôle : instructeur, finances ou administrateur.")
    user = accounts.invite_user(email=email, full_name=full_name, role=role, invited_by=actor, now=now)
    audit.record(actor, "invite", subject_kind="user", subject_id=user.id, label=label_of(user),
                 now=now, after=_state(user))
    return user


def resend_invitation(actor: User, user: User, *, now: datetime) -> None:
    _require_admin(actor)
    if user.approved_at is None:
        raise AccountError(f"{user.full_name} s'est inscrit lui-même : son compte attend une validation, "
                           "pas une invitation.")
    if not accounts.invitation_pending(user):
        raise AccountError(f"{user.full_name} a déjà choisi son mot de passe : pas d'invitation à renvoyer.")
    accounts.send_invitation(user, actor, now=now)
    audit.record(actor, "resend_invitation", subject_kind="user", subject_id=user.id,
                 label=label_of(user), now=now)


def change_role(actor: User, user: User, role: str, *, now: datetime) -> None:
    _require_admin(actor)
    if not user.is_staff or role not in STAFF_ROLES:
        raise AccountError("Seuls les rôles du personnel de la Région (instructeur, finances, "
                           "administrateur) se changent ici ; un demandeur reste demandeur.")
    if role == user.role:
        raise AccountError(f"{user.full_name} a déjà le rôle « {ROLE_LABELS[role]} ».")
    _not_oneself(actor, user, "changer le rôle de")
    before = _state(user)
    user.role = role
    audit.record(actor, "change_role", subject_kind="user", subject_id=user.id, label=label_of(user),
                 now=now, before=before, after=_state(user))


def deactivate(actor: User, user: User, *, now: datetime, reason: str = "") -> None:
    _require_admin(actor)
    if not user.active:
        raise AccountError(f"Le compte de {user.full_name} est déjà désactivé.")
    _not_oneself(actor, user, "désactiver")
    before = _state(user)
    user.active = False
    end_sessions(user)
    audit.record(actor, "deactivate", subject_kind="user", subject_id=user.id, label=label_of(user),
                 now=now, before=before, after=_state(user), reason=reason)


def end_sessions(user: User) -> None:
    """End the account's sessions and remember cookies, at their next request."""
    accounts.end_all_sessions(user)


def reactivate(actor: User, user: User, *, now: datetime) -> None:
    """An applicant refused by mistake comes back approved (by this admin), and is told."""
    _require_admin(actor)
    if user.active:
        raise AccountError(f"Le compte de {user.full_name} est déjà actif.")
    before = _state(user)
    user.active = True
    after = _state(user)
    if user.role == "applicant" and user.approved_at is None:
        user.approved_at, user.approved_by_id = now, actor.id
        after["approved"] = True
        notifications.queue(
            "account_approved", key=f"account:{user.id}:approved", recipients=[user],
            context={"full_name": user.full_name, "email": user.email,
                     "approved_by": accounts.REGION, "approved_by_id": actor.id,
                     "email_confirmed": user.email_confirmed_at is not None,
                     "url": accounts._external_url("auth.login"),
                     **accounts._collectivite_context(user)}, now=now)
    audit.record(actor, "reactivate", subject_kind="user", subject_id=user.id, label=label_of(user),
                 now=now, before=before, after=after)


def attach_agent(actor: User, collectivite: Collectivite, *, email: str, full_name: str,
                 now: datetime) -> User:
    """Give an agent access to ``collectivite``: an existing applicant account moves there (approved
    and active); an unknown address is invited."""
    _require_admin(actor)
    user = accounts.find_user_by_email(email)
    if user is None:
        user = accounts.invite_user(email=email, full_name=full_name, role="applicant",
                                    collectivite=collectivite, invited_by=actor, now=now)
        audit.record(actor, "invite", subject_kind="user", subject_id=user.id, label=label_of(user),
                     now=now, after=_state(user))
        return user
    if user.role != "applicant":
        raise AccountError(f"{user.email} est un compte du personnel de la Région ({user.role_label}) : "
                           "il ne peut pas être agent d'une collectivité.")
    if user.active and user.collectivite_id == collectivite.id and user.approved_at is not None:
        raise AccountError(f"{user.full_name} est déjà agent de {collectivite.name}.")
    before = _state(user)
    user.collectivite, user.active = collectivite, True
    if user.approved_at is None or before["collectivite"] != collectivite.name:
        user.approved_at, user.approved_by_id = now, actor.id
    audit.record(actor, "attach_agent", subject_kind="user", subject_id=user.id, label=label_of(user),
                 now=now, before=before, after=_state(user))
    return user


def detach_agent(actor: User, user: User, *, now: datetime) -> None:
    """The agent no longer works for the collectivité: the account (which belongs to exactly one
    collectivité) is deactivated; its history stays. Attaching it again reactivates it."""
    _require_admin(actor)
    if user.role != "applicant" or not user.active:
        raise AccountError(f"{user.full_name} n'est pas un agent actif d'une collectivité.")
    before = _state(user)
    user.active = False
    end_sessions(user)
    audit.record(actor, "detach_agent", subject_kind="user", subject_id=user.id, label=label_of(user),
                 now=now, before=before, after=_state(user))


def people_query(*, role: str | None = None, status: str | None = None, text: str | None = None):
    query = select(User)
    if role:
        query = query.where(User.role == role)
    if status == "actif":
        query = query.where(User.active.is_(True))
    elif status == "desactive":
        query = query.where(User.active.is_(False))
    elif status == "invitation":
        query = query.where(User.active.is_(True), User.email_confirmed_at.is_(None))
    if text and text.strip():
        needle = text.strip().lower()
        query = query.where(func.lower(User.full_name).contains(needle, autoescape=True)
                            | func.lower(User.email).contains(needle, autoescape=True))
    return query.order_by(User.role.desc(), User.full_name, User.id)


def agents_of(collectivite: Collectivite) -> list[User]:
    return list(db.session.scalars(select(User).where(User.collectivite_id == collectivite.id)
                                   .order_by(User.active.desc(), User.full_name)))
