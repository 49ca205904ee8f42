"""Celery entry point (``celery -A worker worker``): wiring arrives with the worker issue."""
