"""Structured logs: every record of a request carries its request id, and in production (or with
``LOG_FORMAT=json``) each record is one JSON object on one line of standard error, in the web
processes and in the Celery worker and beat (``worker/celery.py``; a task's records carry its id).

The request id is the caller's ``X-Request-ID`` when it is sane (the reverse proxy or a load
balancer may set one, to follow a request across services), else a new random one; it is given
back in the ``X-Request-ID`` header of the answer, so a user's report can be matched to the logs.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime

from flask import Flask, g, has_request_context, request

REQUEST_ID_HEADER = "X-Request-ID"
# Letters, digits and a few separators, 8 to 128 of them: what proxies generate (UUIDs, hex), and
# nothing that could forge a log line or a header (no spaces, quotes, newlines).
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{8,128}")
HANDLER_NAME = "instruction-json"

# Attributes every LogRecord has: what is not among them was given with ``extra=`` and is kept.
_STANDARD_ATTRIBUTES = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "request_id"}


def current_request_id() -> str | None:
    if has_request_context():
        return g.get("request_id")
    return None


class RequestIdFilter(logging.Filter):
    """Puts ``request_id`` on every record (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, request_id, the
    ``extra=`` fields, and the traceback of an exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or current_request_id(),
        }
        if entry["request_id"] is None and (task := _current_task()) is not None:
            entry["task"], entry["task_id"] = task.name, task.request.id
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def _current_task():
    """The Celery task this record was logged in (worker processes), else None."""
    from celery import current_task

    task = current_task._get_current_object() if current_task else None
    return task if task is not None and getattr(task.request, "id", None) else None


def install_json_logging(level: str = "INFO", stream=None) -> logging.Handler:
    """The root logger writes JSON lines (once per process: a second app replaces the handler)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def register_request_log(app: Flask) -> None:
    if app.config.get("LOG_FORMAT") == "json":
        install_json_logging(app.config.get("LOG_LEVEL", "INFO"))
        # Flask's own handler would write each app.logger record a second time, as text.
        from flask.logging import default_handler

        app.logger.removeHandler(default_handler)
    app.logger.addFilter(RequestIdFilter())
    access_log = logging.getLogger("instruction.request")

    @app.before_request
    def assign_request_id() -> None:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if SANE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @app.after_request
    def log_request(response):
        request_id = g.get("request_id")
        if request_id:
            response.headers[REQUEST_ID_HEADER] = request_id
        started = g.get("request_started")
        access_log.info("%s %s %s", request.method, request.path, response.status_code, extra={
            "method": request.method, "path": request.path, "status": response.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1) if started else None,
        })
        return response
