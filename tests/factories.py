"""Factories as plain functions with keyword overrides."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from itertools import count
from secrets import token_hex

from sqlalchemy import select, update

from instruction.accounts.models import User
from instruction.accounts.services import create_user
from instruction.campaigns.models import Campaign
from instruction.demo import advance
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


# The TOTP secret of the admins the factories create (two-factor authentication is mandatory for
# them); ``log_in`` types its current code.
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def user(role: str = "instructor", *, collectivite=None, email: str | None = None,
         password: str = PASSWORD, full_name: str | None = None, totp: bool | None = None, **kw):
    """An account; admins come with two-factor authentication enrolled (``totp=False``: not yet,
    they enrol at their first login), other staff without (``totp=True``: with)."""
    if role == "applicant" and collectivite is None:
        collectivite = commune()
    n = next(_seq)
    created = create_user(email=email or f"{role}{n}@exemple.fr", full_name=full_name or f"Agent {n}",
                          password=password, role=role, collectivite=collectivite,
                          **{"now": NOW, **kw})
    if totp if totp is not None else role == "admin":
        from instruction.accounts import two_factor

        two_factor.store_secret(created, TOTP_SECRET)
        created.totp_enabled_at = NOW
        db.session.flush()
    return created


def totp_code(secret: str = TOTP_SECRET) -> str:
    """The code an authenticator app shows at the application's instant (frozen or not)."""
    import pyotp

    from instruction import clock

    return pyotp.TOTP(secret).at(clock.now())


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
def campaign(code: str = "demo") -> Campaign:
    return db.session.scalar(select(Campaign).where(Campaign.code == code))


def attach_document(line, uploader=None, now: datetime = NOW) -> Document:
    doc = Document(dossier=line.dossier, line=line, original_name="facture.pdf",
                   storage_key=token_hex(16), size_bytes=1234, content_type="application/pdf",
                   sha256="0" * 64, uploaded_by=uploader, uploaded_at=now)
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
        attach_document(services.add_line(d, **spec), author, now)
    db.session.flush()
    advance(d, state, applicant=author, instructor=staff("instructor"), finance=staff("finance"),
            now=now, grant_amount=grant_amount, reason="Motif")
    return d


# --- volume --------------------------------------------------------------------------------------

BULK_STATES = ("received", "incomplete", "eligible", "granted", "paid", "refused")


def bulk_dossiers(n: int, *, aid: int = 2, collectivites=None, states=BULK_STATES, assignees=(),
                  campaign_code: str = "demo", start: datetime = NOW) -> str:
    """Insert ``n`` submitted dossiers in one ORM bulk INSERT (no lines, events nor envelopes):
    for volume tests and benchmarks of the queue. Amounts are Decimal; each dossier is submitted one
    minute before the previous one. Returns the reference prefix of the batch."""
    from datetime import timedelta

    from sqlalchemy import insert

    from instruction.dossiers.models import Dossier
    from instruction.rules import load_campaign

    camp = campaign(campaign_code)
    scope_kind = load_campaign(campaign_code).aid(aid).cap_scope
    collectivites = list(collectivites or [epci("200000925")])
    scopes = [f"commune:{c.insee}" if scope_kind == "commune" else f"{scope_kind}:{c.epci.siren}"
              for c in collectivites]
    prefix = f"B{next(_seq)}"
    rows = []
    for i in range(n):
        state = states[i % len(states)]
        k = i % len(collectivites)
        requested = Decimal(1000 + (i * 37) % 9000)
        computed = requested if state not in ("received", "incomplete") else None
        granted = computed if state in ("granted", "paid") else None
        submitted = start - timedelta(minutes=i)
        rows.append({
            "reference": f"{prefix}-A{aid}-{i:06d}", "campaign_id": camp.id, "aid_number": aid,
            "collectivite_id": collectivites[k].id, "state": state, "title": f"Projet {i}",
            "created_at": submitted, "updated_at": submitted, "submitted_at": submitted,
            "requested_amount": requested, "computed_amount": computed, "granted_amount": granted,
            "paid_amount": granted if state == "paid" else None, "cap_scope": scopes[k],
            "assigned_to_id": assignees[i % len(assignees)].id if assignees and i % 3 else None,
        })
    db.session.execute(insert(Dossier), rows)
    return prefix


# --- files for the upload tests (portal) -------------------------------------------------------


def pdf_bytes(text: str = "Facture") -> bytes:
    """A small valid one-page PDF."""
    from instruction.demo import simple_pdf

    return simple_pdf(text)


def png_bytes(width: int = 2, height: int = 2) -> bytes:
    """A valid RGB PNG."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\xff\x80\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def jpeg_bytes() -> bytes:
    """A tiny valid JPEG (1x1, grey)."""
    return bytes.fromhex(
        "ffd8ffe000104a46494600010101004800480000ffdb004300030202020203020202030303030406040404040408"
        "06060506090809090a090809090a0c0f0c0a0b0e0b09090d110d0e0f101011100a0c12131210130f101010ffc9"
        "000b080001000101011100ffcc000600101005ffda0008010100003f00d2cf20ffd9")


# --- logging in through the login form -----------------------------------------------------------


def log_in(client, user, password: str = PASSWORD):
    """Log ``user`` in through the real form, with the second factor when the account has one;
    the user must be committed."""
    response = client.post("/connexion", data={"email": user.email, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    if response.headers["Location"].endswith("/connexion/code"):
        second_factor(client, user)
    assert not response.headers["Location"].endswith("/connexion/double-authentification"), \
        "an admin without two-factor authentication: create it with totp=True, or enrol it"
    return user


def second_factor(client, user, *, expected: int = 302):
    """Type the current TOTP code on the second-factor page. The code of a step is accepted once
    per account: the step last used is forgotten first, as tests log the same admin in often."""
    db.session.execute(update(User).where(User.id == user.id).values(totp_last_step=None))
    db.session.commit()
    from instruction.accounts import two_factor

    data = {"code": totp_code(two_factor.secret_of(user) or TOTP_SECRET)}
    page = client.get("/connexion/code").get_data(as_text=True)
    if match := re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page):
        data["csrf_token"] = match.group(1)  # a client with CSRF protection on
    response = client.post("/connexion/code", data=data)
    assert response.status_code == expected, response.get_data(as_text=True)[:2000]
    return response


def staff_logged_in(client, session, role: str = "instructor"):
    """A new staff user of ``role``, committed and logged in."""
    member = user(role)
    session.commit()
    return log_in(client, member)
