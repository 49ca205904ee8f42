"""The entry point: ``celery -A worker worker`` and ``celery -A worker beat`` find ``app`` here.

It builds the Flask application from the environment (the same configuration as the web app).
"""

from __future__ import annotations

from instruction import create_app
from worker.celery_app import celery_init_app

flask_app = create_app()
app = celery_init_app(flask_app)
app.set_default()
