"""The entry points of the processes that tests/live.py starts: ``gunicorn tests.live_entry:web``
and ``celery -A tests.live_entry:worker worker``.

They are the production ones (``wsgi:app``, ``worker:app``), built from the environment, with two
differences, both set by environment variables that only the journeys' harness sets:

- ``JOURNEY_CLOCK`` ("<ISO instant>@<Unix time>"): the application's clock reads that instant at
  that Unix time and runs on from there, the same in every process (the web workers, the Celery
  worker and the test that drives them), so the journeys happen inside the demo campaign whatever
  the day they run;
- ``JOURNEY_QUEUE``: the Celery queue the web app publishes to and the worker consumes, of this
  run's own (another run of the suite may use the same Redis).
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta

from instruction import clock


def shifted_clock(spec: str):
    """``clock.now`` for a ``JOURNEY_CLOCK`` value: the anchor instant at the anchor Unix time, plus
    what has elapsed since."""
    instant, unix_time = spec.rsplit("@", 1)
    anchor, at = datetime.fromisoformat(instant), float(unix_time)
    if anchor.tzinfo is None:
        raise ValueError("JOURNEY_CLOCK: the instant needs its offset")
    return lambda: anchor + timedelta(seconds=time.time() - at)


if spec := os.environ.get("JOURNEY_CLOCK"):
    clock.now = shifted_clock(spec)

from instruction import create_app  # noqa: E402  (after the clock is set)
from worker.celery_app import celery_init_app  # noqa: E402

web = create_app()
worker = celery_init_app(web)
if queue := os.environ.get("JOURNEY_QUEUE"):
    worker.conf.task_default_queue = queue
worker.set_default()
