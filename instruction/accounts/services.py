"""Account operations: authentication, creation, registration, e-mail confirmation, password reset,
approval of applicant accounts.

Links sent by e-mail are signed tokens (itsdangerous, keyed by SECRET_KEY) and go through the
notification outbox (``notifications.queue``) in the caller's transaction. A reset token carries a
fingerprint of the current password hash: once the password changes, the link is dead.

An applicant who registers is not yet trusted by the collectivité they chose: the account waits
until a Region admin, or an approved agent of the same collectivité, approves it (or refuses it,
which deactivates it). Services never commit; the views do.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from functools import cache

from flask import current_app, url_for
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import Select, func, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from instruction import clock
from instruction.accounts.models import ROLES, User
from instruction.accounts.passwords import password_problems
from instruction.db import rowcount
from instruction.errors import Refusal
from instruction.extensions import db
from instruction.notifications import services as notifications
from instruction.notifications.models import OutboxMessage

CONFIRM_SALT = "account-confirmation"
RESET_SALT = "password-reset"
CONFIRM_MAX_AGE = 7 * 24 * 3600  # seconds
RESET_MAX_AGE = 3600
REFUSAL_REASON_MAX = 1000  # characters of the reason sent with a refused account


class AccountError(Refusal):
    """An account operation refused."""


class NotAllowed(AccountError):
    """The user may not take this decision on this account."""

    status = 403


class AlreadyDecided(AccountError):
    """The account was approved or refused in the meantime (a double click, two approvers)."""

    status = 409


def normalise_email(email: str) -> str:
    return email.strip().lower()


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.email) == normalise_email(email)))


@cache
def _dummy_hash() -> str:
    return generate_password_hash(secrets.token_hex(16))


def authenticate(email: str, password: str, *, now: datetime) -> User | None:
    """The active user with these credentials, or None (same answer for unknown e-mail and bad
    password). A password is hashed in every case, so an unknown address answers as slowly as a
    known one: the delay does not tell who has an account. ``last_login_at`` is set only when
    the account may sign in (``may_sign_in``)."""
    user = find_user_by_email(email)
    if user is None:
        check_password_hash(_dummy_hash(), password)
        return None
    if not user.check_password(password) or not user.active:
        return None
    if may_sign_in(user):
        user.last_login_at = now
    return user


def may_sign_in(user: User) -> bool:
    """Confirmed, and approved for an applicant: an account with the right password but not yet
    usable is told why instead (not a login)."""
    return user.email_confirmed_at is not None and not (user.role == "applicant" and user.approved_at is None)

def record_login(user: User, *, now: datetime) -> None:
    """A login completed (after the second factor, when there is one)."""
    user.last_login_at = now


def end_all_sessions(user: User) -> None:
    """End every session and remember cookie of ``user`` at their next request (logout, a new
    password, a deactivated account, « se déconnecter partout »): the session version they carry
    no longer matches."""
    db.session.execute(update(User).where(User.id == user.id)
                       .values(session_version=User.session_version + 1)
                       .execution_options(synchronize_session=False))
    db.session.expire(user, ["session_version"])


def create_user(*, email: str, full_name: str, password: str, role: str, collectivite=None,
                confirmed: bool = True, approved: bool = True, now: datetime) -> User:
    """An account; commands, the demo and tests create trusted accounts (confirmed and approved).
    Only the public registration creates an applicant with ``approved=False``."""
    if role not in ROLES:
        raise AccountError(f"Rôle inconnu : {role}")
    if (role == "applicant") != (collectivite is not None):
        raise AccountError("Un demandeur appartient à une collectivité, et seulement un demandeur.")
    if find_user_by_email(email) is not None:
        raise AccountError("Un compte existe déjà avec cette adresse électronique.")
    user = User(email=normalise_email(email), full_name=full_name, role=role, collectivite=collectivite,
                email_confirmed_at=now if confirmed else None, approved_at=now if approved else None)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    return user


# --- registration and e-mail confirmation ----------------------------------------------------------


def check_password(password: str, email: str) -> None:
    """AccountError with every broken rule (French), or nothing."""
    problems = password_problems(password, email)
    if problems:
        raise AccountError(" ".join(problems))


def register_applicant(*, email: str, full_name: str, password: str, collectivite, now: datetime) -> User | None:
    """An unconfirmed, not yet approved applicant account of ``collectivite``. The confirmation
    link is queued, and so is the request for approval to those who may approve it.

    If the address already has an account, nothing is created and its owner is told by e-mail
    (kind ``account_exists``), in about the same time: the answer on the page is the same, so the
    form does not tell who has an account. Returns the new account, or None."""
    check_password(password, email)
    existing = find_user_by_email(email)
    if existing is not None:
        generate_password_hash(password)  # as long as creating the account would take
        if existing.active:
            notifications.queue("account_exists", key=_next_key(existing, "exists"), recipients=[existing],
                                context={"url": _external_url("auth.login"), "full_name": existing.full_name,
                                         "email": existing.email}, now=now)
        return None
    user = create_user(email=email, full_name=full_name.strip(), password=password, role="applicant",
                       collectivite=collectivite, confirmed=False, approved=False, now=now)
    send_confirmation(user, now=now)
    notify_pending(user, now=now)
    return user


class _ClockSigner(TimestampSigner):
    """Signed links dated, and checked for age, by the application's clock."""

    def get_timestamp(self) -> int:
        return int(clock.now().timestamp())


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt, signer=_ClockSigner)


def _external_url(endpoint: str, **values) -> str:
    """A link for an e-mail: BASE_URL (the public address) and the route's path."""
    return current_app.config["BASE_URL"].rstrip("/") + url_for(endpoint, **values)


def _next_key(user: User, purpose: str) -> str:
    """``account:<id>:<purpose>:<n>``: one outbox row per e-mail actually requested."""
    prefix = f"account:{user.id}:{purpose}:"
    sent = db.session.execute(select(func.count()).select_from(OutboxMessage)
                              .where(OutboxMessage.key.startswith(prefix, autoescape=True))).scalar_one()
    return f"{prefix}{sent + 1}"


def _token_user(salt: str, token: str, max_age: int, *, expired: str, invalid: str
                ) -> tuple[User | None, dict]:
    """The user a signed link names, with the link's data; AccountError(``expired`` or
    ``invalid``) when the signature is out of date or wrong."""
    try:
        data = _serializer(salt).loads(token, max_age=max_age)
    except SignatureExpired:
        raise AccountError(expired) from None
    except BadSignature:
        raise AccountError(invalid) from None
    if not isinstance(data, dict):
        return None, {}
    return db.session.get(User, data.get("uid")), data


def confirmation_token(user: User) -> str:
    return _serializer(CONFIRM_SALT).dumps({"uid": user.id, "email": user.email})


def send_confirmation(user: User, *, now: datetime) -> None:
    """Queue the e-mail with the confirmation link (kind ``account_confirmation``)."""
    notifications.queue(
        "account_confirmation", key=_next_key(user, "confirm"), recipients=[user],
        context={"url": _external_url("auth.confirm", token=confirmation_token(user)),
                 "full_name": user.full_name, "email": user.email,
                 "collectivite": user.collectivite.name if user.collectivite else None,
                 "expires_in_days": CONFIRM_MAX_AGE // 86400},
        now=now,
    )


def resend_confirmation(email: str, *, now: datetime) -> None:
    """Queue a new link if an unconfirmed account has this e-mail; silent otherwise (the answer
    must not tell who has an account)."""
    user = find_user_by_email(email)
    if user is not None and user.active and user.email_confirmed_at is None:
        send_confirmation(user, now=now)


def confirm_email(token: str, *, now: datetime, max_age: int = CONFIRM_MAX_AGE) -> User:
    """Mark the account of ``token`` confirmed (idempotent); AccountError if the link is bad."""
    user, data = _token_user(CONFIRM_SALT, token, max_age, expired=(
        "Ce lien de confirmation a expiré : connectez-vous pour en recevoir un nouveau."), invalid=(
        "Ce lien de confirmation n'est pas valable : vérifiez qu'il a été copié en entier."))
    if user is None or user.email != data.get("email"):
        raise AccountError("Ce lien de confirmation n'est pas valable.")
    if user.email_confirmed_at is None:
        user.email_confirmed_at = now
    return user


# --- password reset --------------------------------------------------------------------------------


def _fingerprint(user: User) -> str:
    return hashlib.sha256(user.password_hash.encode("utf-8")).hexdigest()[:20]


def reset_token(user: User) -> str:
    return _serializer(RESET_SALT).dumps({"uid": user.id, "pw": _fingerprint(user)})


def request_password_reset(email: str, *, now: datetime) -> None:
    """Queue a reset link (kind ``password_reset``) if an active account has this e-mail; silent
    otherwise."""
    user = find_user_by_email(email)
    if user is None or not user.active:
        return
    notifications.queue(
        "password_reset", key=_next_key(user, "reset"), recipients=[user],
        context={"url": _external_url("auth.reset_password", token=reset_token(user)),
                 "full_name": user.full_name, "email": user.email,
                 "expires_in_minutes": RESET_MAX_AGE // 60},
        now=now,
    )


def user_for_reset(token: str, *, max_age: int = RESET_MAX_AGE) -> User:
    """The user a reset link is for; AccountError if it expired, was used or is forged."""
    user, data = _token_user(RESET_SALT, token, max_age, expired=(
        "Ce lien de réinitialisation a expiré (il est valable une heure) : demandez-en un nouveau."),
        invalid=("Ce lien de réinitialisation n'est pas valable : vérifiez qu'il a été copié en "
                 "entier, ou demandez-en un nouveau."))
    if user is None or not user.active or data.get("pw") != _fingerprint(user):
        raise AccountError("Ce lien de réinitialisation a déjà servi ou n'est plus valable : "
                           "demandez-en un nouveau.")
    return user


def reset_password(token: str, password: str, *, now: datetime, max_age: int = RESET_MAX_AGE) -> User:
    """Set a new password through a reset link (which dies with the old password hash). Receiving
    the link proves the address, so the account is confirmed too."""
    user = user_for_reset(token, max_age=max_age)
    check_password(password, user.email)
    user.set_password(password)
    if user.email_confirmed_at is None:
        user.email_confirmed_at = now
    end_all_sessions(user)
    return user


def change_password(user: User, current: str, password: str) -> User:
    """A new password chosen by the signed-in user, who proves the current one; every session of
    the account ends (the caller signs the current one in again)."""
    if not user.check_password(current):
        raise AccountError("Le mot de passe actuel n'est pas le bon.")
    check_password(password, user.email)
    user.set_password(password)
    end_all_sessions(user)
    return user


# --- approval of applicant accounts ----------------------------------------------------------------


def _pending_condition():
    return (User.role == "applicant") & User.active.is_(True) & User.approved_at.is_(None)


def pending_accounts_query(collectivite_id: int | None = None) -> Select:
    """Accounts waiting for approval, oldest first (of one collectivité, or all)."""
    query = select(User).where(_pending_condition())
    if collectivite_id is not None:
        query = query.where(User.collectivite_id == collectivite_id)
    return query.order_by(User.created_at, User.id)


def pending_accounts(collectivite_id: int | None = None) -> list[User]:
    return list(db.session.scalars(pending_accounts_query(collectivite_id)))


def count_pending_accounts() -> int:
    return db.session.scalar(select(func.count(User.id)).where(_pending_condition())) or 0


def _approved_agent_condition():
    """Agents in good standing (approved, active, confirmed): they receive their collectivité's
    dossier e-mails and may approve its new accounts."""
    return ((User.role == "applicant") & User.active.is_(True) & User.approved_at.is_not(None)
            & User.email_confirmed_at.is_not(None))


def approved_agents_query(collectivite_id: int) -> Select:
    return (select(User).where(_approved_agent_condition(), User.collectivite_id == collectivite_id)
            .order_by(User.id))


def approved_agents_of(collectivite_ids) -> dict[int, list[User]]:
    """The approved agents of each collectivité, in one query (the nightly jobs' recipients)."""
    agents: dict[int, list[User]] = {}
    ids = list(set(collectivite_ids))
    if ids:
        for user in db.session.scalars(select(User).where(_approved_agent_condition(),
                                                          User.collectivite_id.in_(ids)).order_by(User.id)):
            assert user.collectivite_id is not None  # one of ids
            agents.setdefault(user.collectivite_id, []).append(user)
    return agents


def approved_agents_count(collectivite_ids) -> dict[int, int]:
    """Approved agents per collectivité, for the admins' list (one query)."""
    ids = list(set(collectivite_ids))
    if not ids:
        return {}
    rows = db.session.execute(
        select(User.collectivite_id, func.count(User.id))
        .where(_approved_agent_condition(), User.collectivite_id.in_(ids))
        .group_by(User.collectivite_id))
    return {collectivite_id: n for collectivite_id, n in rows
            if collectivite_id is not None}  # always: one of ids


def may_decide(approver: User | None, user: User) -> bool:
    """Whether ``approver`` may approve or refuse ``user``'s account: an active Region admin, or an
    active, approved agent of the very same collectivité (someone who knows its staff)."""
    if approver is None or not approver.active or approver.id == user.id:
        return False
    if approver.role == "admin":
        return True
    return (approver.role == "applicant" and approver.approved_at is not None
            and approver.collectivite_id is not None and approver.collectivite_id == user.collectivite_id)


def _check_decision(user: User, approver: User) -> None:
    if not may_decide(approver, user):
        raise NotAllowed("Vous ne pouvez pas valider ni refuser ce compte : seuls la Région et les "
                         "agents déjà validés de la même collectivité le peuvent.")
    if user.role != "applicant" or user.approved_at is not None:
        raise AlreadyDecided(f"Le compte de {user.full_name} est déjà validé.")
    if not user.active:
        raise AlreadyDecided(f"Le compte de {user.full_name} a déjà été refusé ou désactivé.")


REGION = "la Région Bourgogne-Franche-Comté"


def _approved_by(approver: User) -> str:
    """Who approved, as the applicant is told: the Region, or the colleague by name."""
    return approver.full_name if approver.role == "applicant" else REGION


def _refused_by(approver: User) -> str:
    """Who refused, as the applicant is told: the Region, or a colleague, unnamed (the person
    refused may not be who they claim; no need to hand them a real agent's name)."""
    return "un agent de la collectivité" if approver.role == "applicant" else REGION


def _collectivite_context(user: User) -> dict:
    collectivite = user.applicant_collectivite
    return {"collectivite": collectivite.name, "collectivite_kind": collectivite.kind_label,
            "collectivite_code_label": "code INSEE" if collectivite.kind == "commune" else "SIREN",
            "collectivite_code": collectivite.code}


def notify_pending(user: User, *, now: datetime) -> None:
    """Tell who may approve ``user``'s account that it waits (kind ``account_pending``): the Region's
    admins (link to the accounts page) and, separately, the approved agents of the collectivité
    (link to their portal home). One outbox row per audience, keys
    ``account:<id>:pending:region`` and ``account:<id>:pending:collectivite``."""
    context = {"applicant_name": user.full_name, "applicant_email": user.email,
               **_collectivite_context(user)}
    admins = db.session.scalars(select(User).where(User.role == "admin", User.active.is_(True))
                                .order_by(User.id)).all()
    notifications.queue("account_pending", key=f"account:{user.id}:pending:region", recipients=admins,
                        context={**context, "audience": "region",
                                 "url": _external_url("admin.accounts")}, now=now)
    agents = db.session.scalars(approved_agents_query(user.applicant_collectivite.id)).all()
    notifications.queue("account_pending", key=f"account:{user.id}:pending:collectivite",
                        recipients=[agent for agent in agents if agent.id != user.id],
                        context={**context, "audience": "collectivite",
                                 "url": _external_url("portal.index", _anchor="demandes-acces")}, now=now)


def approve_account(user: User, approver: User, *, now: datetime) -> User:
    """Approve a pending applicant account; the applicant is told (kind ``account_approved``, key
    ``account:<id>:approved``). One conditional UPDATE: of two approvers at the same moment, or an
    approver and a refuser, only the first decides; the other gets AlreadyDecided."""
    _check_decision(user, approver)
    result = db.session.execute(
        update(User).where(User.id == user.id, _pending_condition())
        .values(approved_at=now, approved_by_id=approver.id)
        .execution_options(synchronize_session="fetch"))
    if rowcount(result) != 1:
        raise AlreadyDecided(f"Le compte de {user.full_name} a déjà été validé ou refusé.")
    notifications.queue(
        "account_approved", key=f"account:{user.id}:approved", recipients=[user],
        context={"full_name": user.full_name, "email": user.email, "approved_by": _approved_by(approver),
                 "email_confirmed": user.email_confirmed_at is not None,
                 "approved_by_id": approver.id, "url": _external_url("auth.login"),
                 **_collectivite_context(user)}, now=now)
    return user


def refuse_account(user: User, approver: User, reason: str, *, now: datetime) -> User:
    """Refuse a pending applicant account: it is deactivated (``active = False``) and the applicant
    gets the reason (kind ``account_refused``, key ``account:<id>:refused``). The outbox row keeps
    who refused, when and why."""
    _check_decision(user, approver)
    reason = (reason or "").strip()
    if not reason:
        raise AccountError("Indiquez le motif du refus : il est envoyé à la personne.")
    if len(reason) > REFUSAL_REASON_MAX:
        raise AccountError(f"Le motif du refus tient en {REFUSAL_REASON_MAX} caractères au plus.")
    # Queued before the deactivation, since ``queue`` skips inactive accounts; if the UPDATE below
    # matches nothing, the caller's rollback discards this row with the rest.
    notifications.queue(
        "account_refused", key=f"account:{user.id}:refused", recipients=[user],
        context={"full_name": user.full_name, "email": user.email, "reason": reason,
                 "refused_by": _refused_by(approver), "refused_by_id": approver.id,
                 "refused_at": now.isoformat(), **_collectivite_context(user)}, now=now)
    result = db.session.execute(
        update(User).where(User.id == user.id, _pending_condition()).values(active=False)
        .execution_options(synchronize_session="fetch"))
    if rowcount(result) != 1:
        raise AlreadyDecided(f"Le compte de {user.full_name} a déjà été validé ou refusé.")
    return user


# --- invitations (accounts created by an admin) ----------------------------------------------------

INVITE_SALT = "account-invitation"
INVITE_MAX_AGE = 7 * 24 * 3600  # seconds


def invitation_token(user: User) -> str:
    """Signed, expiring, and dead once used: it carries the fingerprint of the placeholder password."""
    return _serializer(INVITE_SALT).dumps({"uid": user.id, "pw": _fingerprint(user)})


def invite_user(*, email: str, full_name: str, role: str, invited_by: User, now: datetime,
                collectivite=None) -> User:
    """An account created by an admin (staff, or an agent of ``collectivite``), approved by them.
    Its password is a random placeholder nobody knows: the invitee chooses one from the link of
    the invitation e-mail (kind ``account_invitation``), which also confirms the address."""
    email, full_name = normalise_email(email), (full_name or "").strip()
    if not email or "@" not in email:
        raise AccountError("Indiquez une adresse électronique valide.")
    if not full_name:
        raise AccountError("Indiquez le nom de la personne invitée.")
    user = create_user(email=email, full_name=full_name, password=secrets.token_urlsafe(32), role=role,
                       collectivite=collectivite, confirmed=False, approved=True, now=now)
    user.created_at, user.approved_by_id = now, invited_by.id
    send_invitation(user, invited_by, now=now)
    return user


def send_invitation(user: User, invited_by: User, *, now: datetime) -> None:
    """Queue the invitation e-mail with a fresh link; the outbox row keeps what the e-mail says."""
    notifications.queue(
        "account_invitation", key=_next_key(user, "invite"), recipients=[user],
        context={"url": _external_url("auth.accept_invitation", token=invitation_token(user)),
                 "full_name": user.full_name, "email": user.email, "role": user.role,
                 "role_label": user.role_label,
                 "collectivite": user.collectivite.name if user.collectivite else None,
                 "invited_by": invited_by.full_name, "invited_by_id": invited_by.id,
                 "expires_in_days": INVITE_MAX_AGE // 86400}, now=now)


def invitation_pending(user: User) -> bool:
    """An account whose address is not confirmed yet: for an invited one, the password was never
    chosen (the admin may send a new invitation)."""
    return user.active and user.email_confirmed_at is None


def user_for_invitation(token: str, *, max_age: int = INVITE_MAX_AGE) -> User:
    user, data = _token_user(INVITE_SALT, token, max_age, expired=(
        "Cette invitation a expiré (elle est valable 7 jours) : demandez à l'administrateur de "
        "vous en envoyer une nouvelle."), invalid=(
        "Ce lien d'invitation n'est pas valable : vérifiez qu'il a été copié en entier."))
    if user is None or not user.active or data.get("pw") != _fingerprint(user):
        raise AccountError("Cette invitation a déjà servi ou n'est plus valable : connectez-vous, ou "
                           "utilisez « Mot de passe oublié ».")
    return user


def accept_invitation(token: str, password: str, now: datetime, *, max_age: int = INVITE_MAX_AGE) -> User:
    """The invitee chooses a password; the link dies with the placeholder and the address is confirmed."""
    user = user_for_invitation(token, max_age=max_age)
    check_password(password, user.email)
    user.set_password(password)
    if user.email_confirmed_at is None:
        user.email_confirmed_at = now
    return user
