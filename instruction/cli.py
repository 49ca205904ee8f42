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
    from instruction.campaigns.cli import campaigns_cli
    from instruction.demo import demo_cli
    from instruction.simulation import simulate_command
    from instruction.territory.cli import territory_cli

    app.cli.add_command(territory_cli)
    app.cli.add_command(campaigns_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(simulate_command)


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def serve_command(host: str, port: int) -> None:
    """Serve the web application (embedded default: for a demo or a workstation)."""
    app = _create_app()
    click.echo(f"Application servie sur http://{host}:{port}")
    # Not app.run(): Flask ignores it inside its own CLI.
    from werkzeug.serving import run_simple

    run_simple(host, port, app, threaded=True, use_reloader=False)


if __name__ == "__main__":  # python -m instruction.cli
    main()
