"""Read and change the service's identity.

``current_identity()`` returns a frozen snapshot: the letters, acknowledgments and outbox rows
copy its fields at the event, so a later change of address never rewrites a past act.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime

from flask import current_app

from instruction.errors import Refusal
from instruction.extensions import db
from instruction.settings.models import ServiceIdentity

ROW_ID = 1


@dataclass(frozen=True)
class Identity:
    authority_name: str
    service_name: str
    postal_address: str
    email: str
    telephone: str
    signatory_name: str
    signatory_title: str
    tribunal_name: str
    tribunal_address: str
    telerecours_url: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


IDENTITY_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Identity))

# French labels of the fields (the admin edit page and error messages use them).
FIELD_LABELS: dict[str, str] = {
    "authority_name": "Collectivité",
    "service_name": "Service instructeur",
    "postal_address": "Adresse postale",
    "email": "Adresse électronique",
    "telephone": "Téléphone",
    "signatory_name": "Nom du signataire",
    "signatory_title": "Qualité du signataire",
    "tribunal_name": "Tribunal administratif",
    "tribunal_address": "Adresse du tribunal administratif",
    "telerecours_url": "Adresse de Télérecours citoyens",
}


def max_length(name: str) -> int | None:
    """The longest text the column takes (None: unbounded)."""
    return getattr(ServiceIdentity.__table__.columns[name].type, "length", None)


class InvalidIdentity(Refusal):
    status = 400


def default_identity() -> Identity:
    """The identity from the configuration (``SERVICE_IDENTITY``, see instruction/config.py)."""
    return Identity(**{name: current_app.config["SERVICE_IDENTITY"][name] for name in IDENTITY_FIELDS})


def current_identity() -> Identity:
    row = db.session.get(ServiceIdentity, ROW_ID)
    if row is None:
        return default_identity()
    return Identity(**{name: getattr(row, name) for name in IDENTITY_FIELDS})


def update_identity(changes: dict[str, str], *, now: datetime) -> tuple[Identity, Identity]:
    """Apply ``changes`` (field name -> new text) and return (before, after).

    The row is created from the defaults the first time. Every field is required; unknown names are
    refused. Flushes, never commits (the caller writes its audit event and commits)."""
    unknown = set(changes) - set(IDENTITY_FIELDS)
    if unknown:
        raise InvalidIdentity(f"Champ inconnu : {', '.join(sorted(unknown))}.")
    cleaned = {name: (value or "").strip() for name, value in changes.items()}
    empty = [FIELD_LABELS[name] for name, value in cleaned.items() if not value]
    if empty:
        raise InvalidIdentity(f"Champ obligatoire : {', '.join(empty)}.")
    for name, value in cleaned.items():
        limit = max_length(name)
        if limit is not None and len(value) > limit:
            raise InvalidIdentity(f"{FIELD_LABELS[name]} : {limit} caractères au plus.")
    before = current_identity()
    after = replace(before, **cleaned)
    row = db.session.get(ServiceIdentity, ROW_ID, with_for_update=True)
    if row is None:
        row = ServiceIdentity(id=ROW_ID)
        db.session.add(row)
    for name in IDENTITY_FIELDS:
        setattr(row, name, getattr(after, name))
    row.updated_at = now
    db.session.flush()
    return before, after


# --- the texts of the legal pages -------------------------------------------------------------------

LEGAL_TEXT_LABELS: dict[str, str] = {
    "legal_notice": "Mentions légales",
    "privacy_notice": "Données personnelles",
    "accessibility_statement": "Déclaration d'accessibilité",
}
LEGAL_TEXT_FIELDS: tuple[str, ...] = tuple(LEGAL_TEXT_LABELS)
LEGAL_TEXT_MAX = 50_000  # characters


def legal_texts() -> dict[str, str]:
    """The texts of the legal pages (empty strings until an admin writes them)."""
    row = db.session.get(ServiceIdentity, ROW_ID)
    return {name: (getattr(row, name) or "") if row is not None else "" for name in LEGAL_TEXT_FIELDS}


def update_legal_texts(changes: dict[str, str], *, now: datetime) -> tuple[dict[str, str], dict[str, str]]:
    """Set the texts of the legal pages; returns (before, after). Flushes, never commits."""
    unknown = set(changes) - set(LEGAL_TEXT_FIELDS)
    if unknown:
        raise InvalidIdentity(f"Champ inconnu : {', '.join(sorted(unknown))}.")
    cleaned = {name: (value or "").strip().replace("\r\n", "\n") for name, value in changes.items()}
    for name, value in cleaned.items():
        if len(value) > LEGAL_TEXT_MAX:
            raise InvalidIdentity(f"{LEGAL_TEXT_LABELS[name]} : {LEGAL_TEXT_MAX} caractères au plus.")
    before = legal_texts()
    row = db.session.get(ServiceIdentity, ROW_ID, with_for_update=True)
    if row is None:
        row = ServiceIdentity(id=ROW_ID, **default_identity().as_dict())
        db.session.add(row)
    for name, value in cleaned.items():
        setattr(row, name, value)
    row.updated_at = now
    db.session.flush()
    return before, {**before, **cleaned}
