import click
from flask.cli import with_appcontext


@click.group("demo", help="Données de démonstration.")
def demo_cli() -> None:
    pass
