"""The application's clock: the one place that reads the current instant.

Views, commands and tasks take "now" from here (never from ``datetime.now`` directly) and hand it
to the services, which take ``now`` as a required keyword argument. A test freezes time with
``monkeypatch.setattr("instruction.clock.now", lambda: instant)``; ``tests/test_clock.py`` fails
if another module reads the instant itself.
"""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """The current instant, timezone-aware, in UTC."""
    return datetime.now(UTC)
