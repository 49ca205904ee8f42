"""Notifications: an outbox written in the same transaction as the change, delivered by the worker.

``services.queue`` writes the rows; ``dispatch`` queues a delivery task after the commit;
``delivery`` sends the e-mails; ``jobs`` holds the periodic jobs; ``views`` the in-app list.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Called by the application factory: the after-commit dispatch and the navbar's unread count."""
    from instruction.notifications.dispatch import register_session_hooks
    from instruction.notifications.views import unread_count

    register_session_hooks()
    app.context_processor(lambda: {"unread_notifications": unread_count})
