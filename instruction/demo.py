"""Demo accounts and dossiers, so that a fresh `make run` shows a working back-office."""

from __future__ import annotations

import secrets
from decimal import Decimal
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from instruction.accounts.services import create_user, find_user_by_email
from instruction.campaigns.models import Campaign
from instruction.dossiers.models import Dossier
from instruction.dossiers.services import add_line, create_draft
from instruction.extensions import db
from instruction.territory.models import Commune, Epci

DEMO_CAMPAIGN = "demo"
# (e-mail, name, role, INSEE code or SIREN of the collectivité)
DEMO_ACCOUNTS = [
    ("mairie@agencourt.exemple.fr", "Claire Martin (mairie d'Agencourt)", "applicant", "21001"),
    ("numerique@plainedijonnaise.exemple.fr", "Paul Bernard (CC de la Plaine Dijonnaise)", "applicant", "200000925"),
    ("instructeur@region.exemple.fr", "Inès Moreau (instructrice)", "instructor", None),
    ("finances@region.exemple.fr", "Hugo Petit (finances)", "finance", None),
    ("admin@region.exemple.fr", "Nadia Roux (administratrice)", "admin", None),
]


def _credentials_file() -> Path:
    return Path(current_app.instance_path) / "demo-credentials.txt"


def _collectivite(code: str):
    if len(code) == 5:
        return db.session.scalar(select(Commune).where(Commune.insee == code))
    return db.session.scalar(select(Epci).where(Epci.siren == code))


def load_demo() -> list[str]:
    """Create the demo accounts (random passwords, kept in instance/) and dossiers; idempotent."""
    created_lines = []
    for email, name, role, code in DEMO_ACCOUNTS:
        if find_user_by_email(email) is None:
            password = secrets.token_urlsafe(9)
            collectivite = _collectivite(code) if code else None
            create_user(email=email, full_name=name, password=password, role=role, collectivite=collectivite)
            created_lines.append(f"{role:<11} {email:<42} {password}")
    if created_lines:
        path = _credentials_file()
        with path.open("a", encoding="utf-8") as f:
            f.write("\n".join(created_lines) + "\n")
        path.chmod(0o600)
    campaign = db.session.scalar(select(Campaign).where(Campaign.code == DEMO_CAMPAIGN))
    if campaign is None:
        raise click.ClickException("Campagne de démonstration absente : lancez `instruction campaigns load`.")
    if db.session.scalar(select(Dossier.id).where(Dossier.campaign_id == campaign.id).limit(1)) is None:
        _demo_dossiers(campaign)
    db.session.commit()
    return created_lines


def _demo_dossiers(campaign: Campaign) -> None:
    agencourt_agent = find_user_by_email(DEMO_ACCOUNTS[0][0])
    plaine_agent = find_user_by_email(DEMO_ACCOUNTS[1][0])
    draft = create_draft(campaign=campaign, aid_number=1, collectivite=agencourt_agent.collectivite,
                         author=agencourt_agent, title="Renouvellement du poste de la mairie")
    add_line(draft, category="equipement", label="Ordinateur portable et écran", amount_ht=Decimal("1180.00"), pack=1)
    add_line(draft, category="licence", label="Suite bureautique, 48 mois", amount_ht=Decimal("960.00"), pack=3, months=48)
    securite = create_draft(campaign=campaign, aid_number=2, collectivite=plaine_agent.collectivite,
                            author=plaine_agent, title="Sauvegarde externalisée et pare-feu")
    add_line(securite, category="equipement", label="Pare-feu et NAS de sauvegarde", amount_ht=Decimal("18450.00"))
    add_line(securite, category="logiciel", label="Logiciel de sauvegarde", amount_ht=Decimal("6200.00"))
    ecoles = create_draft(campaign=campaign, aid_number=4, collectivite=plaine_agent.collectivite,
                          author=plaine_agent, title="Câblage et écrans numériques des écoles")
    add_line(ecoles, category="cablage", label="Câblage réseau de trois écoles", amount_ht=Decimal("14800.00"))
    add_line(ecoles, category="equipement", label="Écrans numériques interactifs", amount_ht=Decimal("21600.00"))


@click.group("demo", help="Données de démonstration.")
def demo_cli() -> None:
    pass


@demo_cli.command("load")
@with_appcontext
def load_command() -> None:
    """Create the demo accounts and dossiers (idempotent) and print the demo credentials."""
    load_demo()
    path = _credentials_file()
    click.echo("Comptes de démonstration (rôle, identifiant, mot de passe) :")
    click.echo(path.read_text(encoding="utf-8").rstrip() if path.exists() else "  (aucun)")
