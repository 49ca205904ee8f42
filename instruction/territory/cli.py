import click
from flask.cli import with_appcontext


@click.group("territory", help="Communes, EPCI et SIVOS de la région.")
def territory_cli() -> None:
    pass
