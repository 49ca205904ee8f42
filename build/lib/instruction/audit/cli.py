"""``instruction audit verify``: check the audit chain, name the first broken link, store the result."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from instruction import clock
from instruction.audit.services import verify_and_record
from instruction.extensions import db


@click.group("audit", help="Journal d'audit : vérification de la chaîne d'empreintes.")
def audit_cli() -> None:
    pass


@audit_cli.command("verify")
@with_appcontext
def verify_command() -> None:
    """Verify every link of the chain; exit status 1 when it is broken."""
    result = verify_and_record(clock.now())
    db.session.commit()
    click.echo(result.message)
    if not result.ok:
        raise SystemExit(1)
