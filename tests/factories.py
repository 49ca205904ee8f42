"""Factories as plain functions with keyword overrides."""

from __future__ import annotations

from itertools import count

from sqlalchemy import select

from instruction.accounts.services import create_user
from instruction.extensions import db
from instruction.territory.models import Commune, Epci

_seq = count(1)
PASSWORD = "correct horse battery staple"


def commune(insee: str = "21001") -> Commune:
    return db.session.scalar(select(Commune).where(Commune.insee == insee))


def epci(siren: str = "200000925") -> Epci:
    return db.session.scalar(select(Epci).where(Epci.siren == siren))


def user(role: str = "instructor", *, collectivite=None, email: str | None = None,
         password: str = PASSWORD, full_name: str | None = None, **kw):
    if role == "applicant" and collectivite is None:
        collectivite = commune()
    n = next(_seq)
    return create_user(email=email or f"{role}{n}@exemple.fr", full_name=full_name or f"Agent {n}",
                       password=password, role=role, collectivite=collectivite, **kw)
