"""The application's clock.

Views take "now" from here (never from ``datetime.now`` directly) so that a test can freeze time
with ``monkeypatch.setattr("instruction.clock.now", lambda: instant)``; services take ``now=``.
"""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """The current instant, timezone-aware, in UTC."""
    return datetime.now(UTC)
