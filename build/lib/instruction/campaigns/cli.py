import click
from flask.cli import with_appcontext


@click.group("campaigns", help="Campagnes d'appel à projets.")
def campaigns_cli() -> None:
    pass


@campaigns_cli.command("load")
@with_appcontext
def load_command() -> None:
    """Create or update the campaigns from the rule parameter files (idempotent)."""
    from instruction.campaigns.services import sync_campaigns

    changes = sync_campaigns()
    for line in changes or ["Campagnes à jour : aucun changement."]:
        click.echo(line)
