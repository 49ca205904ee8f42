"""Back-office d'instruction des aides numériques de la Région Bourgogne-Franche-Comté."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

from instruction.config import load_config

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict | None = None) -> Flask:
    """Application factory: configuration from the environment, overridable by ``test_config``."""
    app = Flask(
        __name__,
        instance_path=os.environ.get("INSTANCE_PATH") or str(PROJECT_ROOT / "instance"),
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    app.config.from_mapping(load_config(Path(app.instance_path), test_config or {}))
    if proxies := app.config["PROXY_COUNT"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)

    from instruction.extensions import init_extensions

    init_extensions(app)

    from instruction.web import register_web

    register_web(app)

    from instruction.cli import register_commands

    register_commands(app)
    return app
