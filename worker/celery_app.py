"""Celery configured from the Flask app: every task runs inside an application context.

Follows Flask's Celery pattern (``celery_init_app`` and a ``FlaskTask``). The broker is
``REDIS_URL`` when set, else the embedded broker, an SQLite file under the instance folder.
"""

from __future__ import annotations

from pathlib import Path

from celery import Celery, Task
from flask import Flask

from instruction.rules.parameters import PARIS
from worker.schedule import BEAT_SCHEDULE

DELIVER_TASK = "worker.deliver_message"
DISPATCH_TASK = "worker.dispatch_messages"  # queues the delivery tasks of several messages
BUILD_EXPORT_TASK = "worker.build_export"


def celery_config(app: Flask) -> dict:
    config = app.config
    conf = {
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        # The periodic jobs are acknowledged when received (a job lost in a crash runs again at its
        # next tick; a long job is never handed to a second worker while it runs); the delivery
        # task is acknowledged when done, and given back to the broker if its process dies
        # (``acks_late``, ``reject_on_worker_lost``: worker/tasks.py).
        "task_acks_late": False,
        "worker_prefetch_multiplier": 1,
        # Defaults for every task; the delivery task has shorter ones.
        "task_soft_time_limit": 600,
        "task_time_limit": 660,
        "timezone": config.get("TIMEZONE", PARIS.key),
        "enable_utc": True,
        "beat_schedule": BEAT_SCHEDULE,
        "task_annotations": {DELIVER_TASK: {"rate_limit": config["NOTIFICATION_RATE"]}},
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 3,
        # A request whose notification cannot be queued waits ~1 s, then carries on (the
        # periodic re-dispatch sends it later).
        "task_publish_retry_policy": {"max_retries": 2, "interval_start": 0,
                                      "interval_step": 0.5, "interval_max": 0.5},
    }
    if config.get("REDIS_URL"):
        conf["broker_url"] = config["REDIS_URL"]
        conf["broker_transport_options"] = {
            "socket_connect_timeout": 3,
            # A delivery task taken by a worker that died goes to another worker this long after it
            # was taken: above the longest a live worker holds one unacknowledged (a retry's
            # countdown, at most ``delivery.TASK_RETRY_MAX``, then the 90-second time limit).
            "visibility_timeout": config["BROKER_VISIBILITY_TIMEOUT"],
            # Look for such tasks every 10 seconds (kombu's default: every 100).
            "unacked_restore_interval": 10,
            "unacked_restore_throttle": 1,
        }
    else:
        path = Path(app.instance_path) / "celery-broker.sqlite"
        conf["broker_url"] = f"sqlite:///{path}"
        conf["broker_transport"] = "worker.broker:Transport"
        conf["worker_enable_remote_control"] = False  # the SQL transport has no broadcast
    return conf


def celery_init_app(app: Flask) -> Celery:
    """The Celery app of ``app`` (created once, kept in ``app.extensions["celery"]``)."""
    if "celery" in app.extensions:
        return app.extensions["celery"]

    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(app.import_name, task_cls=FlaskTask, include=["worker.tasks"],
                    set_as_current=False)
    celery.config_from_object(celery_config(app))
    app.extensions["celery"] = celery
    return celery


def install_publisher(app: Flask) -> None:
    """Give the outbox dispatcher of ``app`` its publisher, through the Celery app of ``app``
    (created when first needed): the delivery task of a single message, or for several one task
    that queues their delivery tasks from the worker (``worker.tasks.dispatch_messages``: one
    publish per batch of a nightly job instead of one per message); and the export jobs theirs (a
    build task per job)."""
    from instruction.notifications import dispatch

    def publish(message_ids: list[int]) -> None:
        if len(message_ids) == 1:
            celery_init_app(app).send_task(DELIVER_TASK, args=message_ids)
        elif message_ids:
            celery_init_app(app).send_task(DISPATCH_TASK, args=[message_ids])

    dispatch.set_publisher(app, publish)
    from instruction.exports import services as export_jobs

    export_jobs.set_publisher(app, lambda job_id: celery_init_app(app).send_task(BUILD_EXPORT_TASK,
                                                                                 args=[job_id]))
