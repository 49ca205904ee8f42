"""The background worker: Celery wiring (``celery_app``), the beat schedule (``schedule``) and
thin tasks (``tasks``). ``celery -A worker …`` loads ``worker/celery.py``; see docs/worker.md."""
