"""Who, among the staff, is concerned by a dossier: its assignee and followers, or else the
instructors. Below the dossier services, which address their notifications with it, and below
``teamwork``, whose services, digest and pages use it."""

from __future__ import annotations

from sqlalchemy import and_, exists, or_, select

from instruction.accounts.models import User
from instruction.dossiers.models import Dossier, DossierFollower
from instruction.extensions import db


def followers_of(dossier_id: int) -> list[User]:
    return list(db.session.scalars(
        select(User).join(DossierFollower, DossierFollower.user_id == User.id)
        .where(DossierFollower.dossier_id == dossier_id, User.active.is_(True)).order_by(User.id)))


def team_of(dossier: Dossier) -> list[User]:
    """The assignee and the followers; when the dossier has none, the instructors (the
    campaign's instructors: every active instructor, as no campaign has a team of its own)."""
    users = followers_of(dossier.id)
    if dossier.assigned_to is not None and dossier.assigned_to.active:
        users = [dossier.assigned_to, *[u for u in users if u.id != dossier.assigned_to_id]]
    if users:
        return users
    return list(db.session.scalars(select(User).where(
        User.role == "instructor", User.active.is_(True)).order_by(User.id)))


def concerns(user_id: int):
    """SQL condition on ``Dossier``: ``user_id`` is in its team (assignee, follower, or an
    instructor of a dossier with neither)."""
    followed = exists(select(DossierFollower.user_id).where(
        DossierFollower.dossier_id == Dossier.id, DossierFollower.user_id == user_id))
    anyone = exists(select(DossierFollower.user_id).where(DossierFollower.dossier_id == Dossier.id))
    return or_(Dossier.assigned_to_id == user_id, followed,
               and_(Dossier.assigned_to_id.is_(None), ~anyone))
