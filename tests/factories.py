"""Factories as plain functions with keyword overrides."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import count
from secrets import token_hex

from sqlalchemy import select

from instruction.accounts.models import User
from instruction.accounts.services import create_user
from instruction.campaigns.models import Campaign
from instruction.dossiers import services
from instruction.dossiers.models import Document
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


# --- dossiers ------------------------------------------------------------------------------------

# Inside the demo campaign (2026-01-01 .. 2027-06-30, Europe/Paris).
NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)

DEFAULT_LINES = {
    1: [{"category": "equipement", "label": "Ordinateur", "amount_ht": "1200.00", "pack": 1}],
    2: [{"category": "equipement", "label": "Serveur de sauvegarde", "amount_ht": "10000.00"}],
    3: [{"category": "logiciel", "label": "Logiciel mutualisé", "amount_ht": "10000.00"}],
    4: [{"category": "cablage", "label": "Câblage des écoles", "amount_ht": "12000.00"}],
    5: [{"category": "logiciel", "label": "Gestion de la relation usager", "amount_ht": "10000.00"}],
}
# Path of states from draft, and the service call that takes each step.
PATHS = {
    "draft": [],
    "received": ["submit"],
    "incomplete": ["submit", "request_documents"],
    "eligible": ["submit", "declare_eligible"],
    "granted": ["submit", "declare_eligible", "grant"],
    "paid": ["submit", "declare_eligible", "grant", "record_final_payment"],
    "ineligible": ["submit", "declare_ineligible"],
    "refused": ["submit", "refuse"],
    "withdrawn": ["submit", "withdraw"],
}


def campaign(code: str = "demo") -> Campaign:
    return db.session.scalar(select(Campaign).where(Campaign.code == code))


def attach_document(line, uploader=None) -> Document:
    doc = Document(dossier=line.dossier, line=line, original_name="facture.pdf",
                   storage_key=token_hex(16), size_bytes=1234, content_type="application/pdf",
                   sha256="0" * 64, uploaded_by=uploader)
    db.session.add(doc)
    return doc


def staff(role: str = "instructor"):
    found = db.session.scalar(select(User).where(User.role == role).order_by(User.id).limit(1))
    return found or user(role)


def applicant_of(collectivite):
    found = db.session.scalar(select(User).where(User.collectivite_id == collectivite.id).limit(1))
    return found or user("applicant", collectivite=collectivite)


def dossier(state: str = "draft", *, aid: int = 2, collectivite=None, lines=None,
            campaign_code: str = "demo", now: datetime = NOW, grant_amount=None):
    """A dossier brought to ``state`` through the services, as users would."""
    if collectivite is None:
        collectivite = commune("21001") if aid == 1 else epci("200000925")
    author = applicant_of(collectivite)
    d = services.create_draft(campaign=campaign(campaign_code), aid_number=aid,
                              collectivite=collectivite, author=author, title="Projet", now=now)
    for spec in lines if lines is not None else DEFAULT_LINES[aid]:
        spec = dict(spec)
        spec["amount_ht"] = Decimal(spec["amount_ht"])
        attach_document(services.add_line(d, **spec), author)
    db.session.flush()
    instructor, finance = staff("instructor"), staff("finance")
    for step in PATHS[state]:
        if step == "submit":
            services.submit(d, author, now=now)
        elif step == "request_documents":
            services.request_documents(d, instructor, "Merci de joindre la facture signée.", now=now)
        elif step == "declare_eligible":
            services.declare_eligible(d, instructor, now=now)
        elif step == "grant":
            services.grant(d, instructor, grant_amount, now=now)
        elif step == "record_final_payment":
            services.record_payment(d, finance, amount=d.granted_amount, paid_on=date(2026, 12, 1),
                                    reference="MANDAT-1", final=True, now=now)
        else:
            getattr(services, step)(d, instructor if step != "withdraw" else author, "Motif", now=now)
    return d
