"""WSGI entry point: ``gunicorn wsgi:app``."""

from instruction import create_app

app = create_app()
