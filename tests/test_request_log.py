"""Structured logs: JSON lines carrying the request id, which the answer gives back."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest

from instruction.web.request_log import HANDLER_NAME
from tests.conftest import TEST_DATABASE_URL, make_test_app


@pytest.fixture
def logged(app, tmp_path):
    """An app logging as JSON (as in production), its log lines captured from the real handler."""
    root = logging.getLogger()
    level = root.level
    json_app = make_test_app(TEST_DATABASE_URL, tmp_path, LOG_FORMAT="json")

    @json_app.get("/essai-journal")
    def log_something():
        json_app.logger.warning("dans la vue")
        logging.getLogger("instruction.documents.services").warning("dans un service")
        return "ok"

    [handler] = [h for h in root.handlers if h.get_name() == HANDLER_NAME]
    stream = io.StringIO()
    handler.setStream(stream)

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield json_app.test_client(), lines
    root.removeHandler(handler)
    root.setLevel(level)


def test_every_record_of_a_request_carries_the_callers_request_id(logged):
    client, lines = logged
    response = client.get("/essai-journal", headers={"X-Request-ID": "caddy-4f1c2a9e-77b0"})
    assert response.headers["X-Request-ID"] == "caddy-4f1c2a9e-77b0"
    records = lines()
    assert [(r["logger"], r["message"]) for r in records] == [
        ("instruction", "dans la vue"),  # Flask's app.logger is named after the package
        ("instruction.documents.services", "dans un service"),
        ("instruction.request", "GET /essai-journal 200"),
    ]
    assert {r["request_id"] for r in records} == {"caddy-4f1c2a9e-77b0"}
    access = records[-1]
    assert (access["method"], access["path"], access["status"]) == ("GET", "/essai-journal", 200)
    assert isinstance(access["duration_ms"], float)
    assert access["level"] == "INFO" and access["time"].endswith("+00:00")


@pytest.mark.parametrize("sent", [None, "", "court", "a b c d e f g h", "x" * 129,
                                  "ok-id\tX-Injected: 1", "identifiant-é-accentué", '"},{"forged":"1'])
def test_a_missing_or_insane_request_id_is_replaced_by_a_new_one(logged, sent):
    client, lines = logged
    headers = {} if sent is None else {"X-Request-ID": sent}
    first = client.get("/essai-journal", headers=headers).headers["X-Request-ID"]
    second = client.get("/essai-journal", headers=headers).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", first) and re.fullmatch(r"[0-9a-f]{32}", second)
    assert first != second
    assert {r["request_id"] for r in lines()} == {first, second}


def test_error_pages_carry_the_request_id_too(logged):
    client, lines = logged
    response = client.get("/page-qui-n-existe-pas", headers={"X-Request-ID": "req-00000001"})
    assert response.status_code == 404
    assert response.headers["X-Request-ID"] == "req-00000001"
    assert lines()[-1]["status"] == 404 and lines()[-1]["request_id"] == "req-00000001"


def test_an_exception_is_logged_with_its_traceback_on_one_line(logged):
    client, lines = logged
    app = client.application
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: a 500 page, and the log

    @app.get("/essai-erreur")
    def fail():
        raise RuntimeError("panne simulée")

    assert client.get("/essai-erreur", headers={"X-Request-ID": "req-00000002"}).status_code == 500
    [error] = [r for r in lines() if r["level"] == "ERROR"]
    assert error["request_id"] == "req-00000002"
    assert "RuntimeError: panne simulée" in error["exception"]


def test_text_logs_by_default_outside_production(app):
    assert app.config["LOG_FORMAT"] == "text"
    assert not [h for h in logging.getLogger().handlers if h.get_name() == HANDLER_NAME]


WORKER_LOGS = """
import logging
from celery.utils.log import get_task_logger
from worker.celery import app

app.log.setup(loglevel="INFO")  # what `celery worker` and `celery beat` do at start
app.conf.task_always_eager = True

@app.task(name="essai.journal")
def log_in_a_task():
    get_task_logger("essai").info("dans une tâche")

log_in_a_task.apply(task_id="tache-0001")
logging.getLogger("worker").warning("hors tâche")
"""


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_worker_processes_log_json_lines_with_the_task_id(tmp_path, log_format):
    import os
    import subprocess
    import sys

    env = {**os.environ, "LOG_FORMAT": log_format, "INSTANCE_PATH": str(tmp_path), "DATABASE_URL": "",
           "REDIS_URL": "", "INSTRUCTION_ENV": ""}
    done = subprocess.run([sys.executable, "-c", WORKER_LOGS], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if "tâche" in line]
    assert len(lines) == 2, done.stderr
    if log_format == "text":  # Celery's own format, as before
        assert not lines[0].startswith("{")
        return
    in_task, outside = (json.loads(line) for line in lines)
    assert (in_task["message"], in_task["task"], in_task["task_id"]) == ("dans une tâche", "essai.journal",
                                                                          "tache-0001")
    assert in_task["request_id"] is None
    assert outside["message"] == "hors tâche" and "task_id" not in outside
