"""The ``instruction`` command: the Flask CLI of the application plus the domain commands."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import FlaskGroup


def _create_app():
    from instruction import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app)
def main() -> None:
    """Back-office d'instruction des aides numériques (Région Bourgogne-Franche-Comté)."""


def register_commands(app: Flask) -> None:
    from instruction.demo import demo_cli
    from instruction.campaigns.cli import campaigns_cli
    from instruction.territory.cli import territory_cli

    app.cli.add_command(territory_cli)
    app.cli.add_command(campaigns_cli)
    app.cli.add_command(demo_cli)
