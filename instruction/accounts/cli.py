"""``instruction accounts create-admin``: the first administrator of a new deployment (the others
are invited from the administration pages). Two-factor authentication is enrolled at first login.
``instruction two-factor``: the keys that encrypt the TOTP secrets (docs/decisions.md)."""

from __future__ import annotations

import click
from cryptography.fernet import Fernet
from flask.cli import with_appcontext

from instruction import clock
from instruction.accounts import two_factor
from instruction.accounts.services import AccountError, check_password, create_user
from instruction.extensions import db


@click.group("accounts", help="Comptes : création du premier administrateur.")
def accounts_cli() -> None:
    pass


@accounts_cli.command("create-admin")
@click.argument("email")
@click.option("--name", "full_name", required=True, help="Prénom et nom de l'administrateur.")
@click.password_option("--password", prompt="Mot de passe", confirmation_prompt="Confirmez le mot de passe",
                       help="Demandé s'il n'est pas donné (ne le passez pas en argument en production).")
@with_appcontext
def create_admin_command(email: str, full_name: str, password: str) -> None:
    """Create an administrator account, confirmed and approved."""
    try:
        check_password(password, email)
        user = create_user(email=email, full_name=full_name, password=password, role="admin",
                           now=clock.now())
    except AccountError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from error
    db.session.commit()
    click.echo(f"Administrateur créé : {user.email}. À sa première connexion, il active la double "
               "authentification.")


@click.group("two-factor", help="Double authentification : clés de chiffrement des secrets TOTP.")
def two_factor_cli() -> None:
    pass


@two_factor_cli.command("new-key")
def new_key_command() -> None:
    """Print a new key, to put first in TOTP_ENCRYPTION_KEYS (then run ``reencrypt``)."""
    click.echo(Fernet.generate_key().decode("ascii"))


@two_factor_cli.command("reencrypt")
@with_appcontext
def reencrypt_command() -> None:
    """Encrypt the secrets still in clear and every other one with the first key; exit status 1
    when some secret no key decrypts (its account must enrol again)."""
    result = two_factor.reencrypt_all()
    db.session.commit()
    click.echo(f"{result.encrypted} secret(s) chiffré(s), {result.rotated} rechiffré(s) avec la première clé")
    if result.unreadable:
        click.echo("Indéchiffrables avec les clés configurées (comptes " + ", ".join(map(str, result.unreadable))
                   + ") : remettez l'ancienne clé dans TOTP_ENCRYPTION_KEYS, ou faites réinscrire ces comptes.",
                   err=True)
        raise SystemExit(1)
