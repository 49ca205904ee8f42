"""Demo accounts and dossiers, so that a fresh `make run` shows a working back-office.

Dossiers are brought to their states through the services, as users would, on the demo campaign,
whose window is set around the day the demo is loaded (``demo_window``): the demo works whatever
the date. Accounts get random passwords, printed at start and kept in
``instance/demo-credentials.txt``.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from instruction import clock
from instruction.accounts.models import User
from instruction.accounts.services import create_user, find_user_by_email
from instruction.campaigns.models import Campaign
from instruction.documents import services as documents
from instruction.dossiers import services
from instruction.dossiers.models import Dossier
from instruction.dossiers.workflow import TRANSITIONS, path_to
from instruction.extensions import db
from instruction.rules.parameters import PARIS, paris_date
from instruction.territory.models import Commune, Epci

DEMO_CAMPAIGN = "demo"
# The demo campaign opened about six months before the demo was loaded, and takes submissions for
# a year after it.
DEMO_OPENED_BEFORE = timedelta(days=182)
DEMO_OPEN_AFTER = timedelta(days=365)
# (e-mail, name, role, INSEE code or SIREN of the collectivité)
DEMO_ACCOUNTS = [
    ("mairie@agencourt.exemple.fr", "Claire Martin (mairie d'Agencourt)", "applicant", "21001"),
    ("numerique@plainedijonnaise.exemple.fr", "Paul Bernard (CC de la Plaine Dijonnaise)", "applicant", "200000925"),
    ("instructeur@region.exemple.fr", "Inès Moreau (instructrice)", "instructor", None),
    ("finances@region.exemple.fr", "Hugo Petit (finances)", "finance", None),
    ("admin@region.exemple.fr", "Nadia Roux (administratrice)", "admin", None),
]
# (applicant index, aid, title, lines as (category, label, amount HT, pack, months), target state)
# (applicant, aid, title, lines (category, label, amount, pack, months), state to reach)
DemoLine = tuple[str, str, str, int | None, int | None]
DEMO_DOSSIERS: list[tuple[int, int, str, list[DemoLine], str]] = [
    (0, 1, "Logiciel de gestion du cimetière", [("logiciel", "Logiciel cimetière", "450.00", 2, None)], "paid"),
    (0, 1, "Renouvellement du poste de la mairie", [
        ("equipement", "Ordinateur portable et écran", "1180.00", 1, None),
        ("licence", "Suite bureautique, 48 mois", "960.00", 3, 48)], "draft"),
    (1, 2, "Sauvegarde externalisée et pare-feu", [
        ("equipement", "Pare-feu et NAS de sauvegarde", "18450.00", None, None),
        ("logiciel", "Logiciel de sauvegarde", "6200.00", None, None)], "received"),
    (1, 3, "Portail citoyen mutualisé", [("logiciel", "Portail et formulaires en ligne", "22000.00", None, None)], "granted"),
    (1, 4, "Câblage et écrans numériques des écoles", [
        ("cablage", "Câblage réseau de trois écoles", "14800.00", None, None),
        ("equipement", "Écrans numériques interactifs", "21600.00", None, None)], "eligible"),
    (1, 5, "Gestion de la relation usager", [("logiciel", "Outil de gestion des demandes", "12500.00", None, None)], "incomplete"),
]
def advance(dossier: Dossier, state: str, *, applicant: User, instructor: User, finance: User, now: datetime,
            grant_amount: Decimal | None = None, reason: str = "Motif de démonstration") -> None:
    """Bring a draft to ``state`` through the services (the table's shortest path), each verb by
    the first role of the table that may take it among the applicant, an instructor, finance
    (else the system)."""
    for verb in path_to(state):
        roles = TRANSITIONS[verb].roles
        actor = next((user for role, user in (("applicant", applicant), ("instructor", instructor),
                                              ("finance", finance)) if role in roles), None)
        if verb == "grant":
            assert actor is not None  # an instructor
            services.grant(dossier, actor, grant_amount, now=now)
        elif verb == "record_final_payment":
            assert actor is not None and dossier.granted_amount is not None  # finance, after the grant
            services.record_payment(dossier, actor, amount=dossier.granted_amount, paid_on=paris_date(now),
                                    reference="MANDAT-DEMO-1", final=True, now=now)
        elif verb == "expire":  # only once the deadline has passed
            services.expire(dossier, actor, now=max(now, dossier.campaign.deadline_at))
        elif verb == "request_documents":
            assert actor is not None  # an instructor
            services.request_documents(dossier, actor, "Merci de joindre la facture signée.", now=now)
        elif TRANSITIONS[verb].needs_reason:
            getattr(services, verb)(dossier, actor, reason, now=now)
        else:
            getattr(services, verb)(dossier, actor, now=now)


def simple_pdf(text: str = "Facture") -> bytes:
    """A valid one-page PDF showing ``text`` (Latin-1): the demo's invoices."""
    stream = f"BT /F1 24 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _credentials_file() -> Path:
    return Path(current_app.instance_path) / "demo-credentials.txt"


def _collectivite(code: str):
    if len(code) == 5:
        return db.session.scalar(select(Commune).where(Commune.insee == code))
    return db.session.scalar(select(Epci).where(Epci.siren == code))


def load_demo(*, now: datetime) -> list[str]:
    """Create the demo accounts and dossiers (as of ``now``); idempotent."""
    created_lines = []
    for email, name, role, code in DEMO_ACCOUNTS:
        if find_user_by_email(email) is None:
            password = secrets.token_urlsafe(9)
            collectivite = _collectivite(code) if code else None
            create_user(email=email, full_name=name, password=password, role=role, collectivite=collectivite,
                        now=now)
            created_lines.append(f"{role:<11} {email:<42} {password}")
    db.session.commit()
    if created_lines:
        path = _credentials_file()
        with path.open("a", encoding="utf-8") as f:
            f.write("\n".join(created_lines) + "\n")
        path.chmod(0o600)
    campaign = db.session.scalar(select(Campaign).where(Campaign.code == DEMO_CAMPAIGN))
    if campaign is None:
        raise click.ClickException("Campagne de démonstration absente : lancez `instruction campaigns load`.")
    if db.session.scalar(select(Dossier.id).where(Dossier.campaign_id == campaign.id).limit(1)) is None:
        _demo_dossiers(campaign, now)
    return created_lines


def _paris_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=PARIS)


def demo_window(now: datetime) -> tuple[datetime, datetime]:
    """(opens_at, deadline) of the demo campaign loaded at ``now``: Paris midnights, the deadline
    being the first instant refused."""
    today = paris_date(now)
    return (_paris_midnight(today - DEMO_OPENED_BEFORE),
            _paris_midnight(today + DEMO_OPEN_AFTER + timedelta(days=1)))


def _demo_account(email: str) -> User:
    user = find_user_by_email(email)
    assert user is not None, f"no demo account {email}"  # the accounts are created first
    return user


def _demo_dossiers(campaign: Campaign, now: datetime) -> None:
    campaign.opens_at, campaign.deadline_at = demo_window(now)
    campaign.dates_set_by_admin = True  # the demo's dates are its own: `campaigns load` keeps them
    db.session.flush()
    applicants = [_demo_account(account[0]) for account in DEMO_ACCOUNTS[:2]]
    instructor, finance = (_demo_account(DEMO_ACCOUNTS[i][0]) for i in (2, 3))
    for who, aid, title, lines, state in DEMO_DOSSIERS:
        author = applicants[who]
        dossier = services.create_draft(campaign=campaign, aid_number=aid, collectivite=author.applicant_collectivite,
                                        author=author, title=title, now=now)
        for category, label, amount, pack, months in lines:
            line = services.add_line(dossier, category=category, label=label, amount_ht=Decimal(amount),
                                     pack=pack, months=months)
            db.session.flush()
            invoice = documents.check_file(f"devis-{line.id}.pdf", simple_pdf(f"Devis : {label}"[:60]),
                                           current_app.config["MAX_UPLOAD_BYTES"])
            documents.store(dossier, invoice, line=line, uploader=author, now=now)
        advance(dossier, state, applicant=author, instructor=instructor, finance=finance, now=now)
        db.session.commit()  # a failed commit rolls back, which removes the stored files


@click.group("demo", help="Données de démonstration.")
def demo_cli() -> None:
    pass


@demo_cli.command("load")
@with_appcontext
def load_command() -> None:
    """Create the demo accounts and dossiers (idempotent) and print the demo credentials."""
    load_demo(now=clock.now())
    path = _credentials_file()
    click.echo("Comptes de démonstration (rôle, identifiant, mot de passe) :")
    click.echo(path.read_text(encoding="utf-8").rstrip() if path.exists() else "  (aucun)")
