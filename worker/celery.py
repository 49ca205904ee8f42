"""The entry point: ``celery -A worker worker`` and ``celery -A worker beat`` find ``app`` here.

It builds the Flask application from the environment (the same configuration as the web app).
"""

from __future__ import annotations

from celery.signals import setup_logging

from instruction import create_app
from worker.celery_app import celery_init_app

flask_app = create_app()
app = celery_init_app(flask_app)
app.set_default()

if flask_app.config.get("LOG_FORMAT") == "json":

    @setup_logging.connect
    def keep_json_logging(**kwargs) -> None:
        """Production: the worker and beat keep the app's JSON lines on the root logger (with the
        task's id and name), instead of the text handler Celery would install in their place."""
