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
    from instruction.accounts.cli import accounts_cli, two_factor_cli
    from instruction.audit.cli import audit_cli
    from instruction.campaigns.cli import campaigns_cli
    from instruction.demo import demo_cli
    from instruction.notifications.cli import worker_cli
    from instruction.simulation import simulate_command
    from instruction.territory.cli import territory_cli

    app.cli.add_command(territory_cli)
    app.cli.add_command(accounts_cli)
    app.cli.add_command(audit_cli)
    app.cli.add_command(two_factor_cli)
    app.cli.add_command(campaigns_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(worker_cli)
    app.cli.add_command(simulate_command)


def served_url(host: str, port: int) -> str:
    """The address ``serve`` answers at: the links in e-mails when ``BASE_URL`` is not set."""
    if host in ("", "0.0.0.0", "::"):  # every interface: the local one answers for sure
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--worker/--no-worker", default=True, show_default=True,
              help="Also run the Celery worker and beat (a child process, same environment).")
def serve_command(host: str, port: int, worker: bool) -> None:
    """Serve the web application (embedded default: for a demo or a workstation). Without
    ``BASE_URL``, links in e-mails (sent by this process and by its worker) point here."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    if not os.environ.get("BASE_URL"):
        os.environ["BASE_URL"] = served_url(host, port)
    app = _create_app()
    child = None
    if worker:  # worker and beat in one process; stopped when the server stops
        schedule = Path(app.instance_path) / "celerybeat-schedule"
        # Its own session: Ctrl-C reaches the server only, which then stops the worker cleanly.
        child = subprocess.Popen([sys.executable, "-m", "celery", "-A", "worker", "worker", "--beat",
                                  "--loglevel", "INFO", "--concurrency", "2", "--schedule", str(schedule)],
                                 start_new_session=True)
        click.echo(f"Tâches de fond démarrées (worker et beat, pid {child.pid})")
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # so that `finally` runs on SIGTERM
    click.echo(f"Application servie sur http://{host}:{port}")
    # Not app.run(): Flask ignores it inside its own CLI.
    from werkzeug.serving import run_simple

    try:
        run_simple(host, port, app, threaded=True, use_reloader=False)
    finally:
        if child is not None and child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()


if __name__ == "__main__":  # python -m instruction.cli
    main()
