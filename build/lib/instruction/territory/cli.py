from pathlib import Path

import click
from flask.cli import with_appcontext

from instruction.extensions import db
from instruction.territory import services


@click.group("territory", help="Communes, EPCI et SIVOS de la région.")
def territory_cli() -> None:
    pass


@territory_cli.command("import")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=services.DATA_FILE, show_default=True)
@with_appcontext
def import_command(path: Path) -> None:
    """Load or update the communes and EPCI of the region (idempotent, never deletes)."""
    report = services.import_territory(path)
    for line in report.lines():
        click.echo(line)
    click.echo("Territoire importé." if report.changed else "Territoire à jour : aucun changement.")


@territory_cli.command("add-sivos")
@click.option("--siren", required=True)
@click.option("--name", "name", required=True, help="Nom du SIVOS")
@click.option("--commune", "communes", multiple=True, required=True, help="Code INSEE d'une commune membre (répétable)")
@click.option("--epci", "epci_siren", default=None, help="SIREN de l'EPCI de rattachement (défaut : celui de la majorité des communes)")
@with_appcontext
def add_sivos_command(siren: str, name: str, communes: tuple[str, ...], epci_siren: str | None) -> None:
    """Create a SIVOS with its member communes."""
    try:
        sivos = services.add_sivos(siren=siren, name=name, member_insee=list(communes), epci_siren=epci_siren)
    except services.TerritoryError as error:
        raise click.ClickException(str(error)) from error
    db.session.commit()
    click.echo(f"SIVOS créé : {sivos.name} ({sivos.siren}), rattaché à {sivos.epci.name}.")


@territory_cli.command("import-sivos")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def import_sivos_command(path: Path) -> None:
    """Create SIVOS from a CSV file (columns: siren, nom, communes, epci); all lines or none."""
    try:
        created = services.import_sivos_csv(path)
    except services.SivosImportError as error:
        raise click.ClickException("Aucun SIVOS importé :\n" + "\n".join(error.problems)) from error
    db.session.commit()
    click.echo(f"{len(created)} SIVOS créés.")
