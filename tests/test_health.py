"""``GET /sante``: the database and the broker checked for real (PostgreSQL, Redis), and each down."""

from __future__ import annotations

import os
import socket
import threading

import pytest
import redis
from werkzeug.serving import make_server

from instruction.probe import probe_web
from tests.conftest import TEST_DATABASE_URL, make_test_app

REDIS_URL = "redis://127.0.0.1:6379/7"


def closed_port() -> int:
    """A port nothing listens on (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def redis_up():
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        pytest.fail(f"Redis is not reachable at {REDIS_URL} ({error}): run `make test`, which starts it.")


def health_app(app, tmp_path, **overrides):
    """An app of its own (the session's ``app`` made sure the test database exists)."""
    return make_test_app(overrides.pop("database", TEST_DATABASE_URL), tmp_path, **overrides)


def test_both_up(app, tmp_path, redis_up):
    response = health_app(app, tmp_path, REDIS_URL=REDIS_URL).test_client().get("/sante")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers  # no session opened
    assert response.mimetype == "application/json"


def test_broker_unreachable(app, tmp_path):
    url = f"redis://127.0.0.1:{closed_port()}/0"
    response = health_app(app, tmp_path, REDIS_URL=url).test_client().get("/sante")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable",
                                   "checks": {"database": "ok", "broker": "unavailable"}}
    assert "127.0.0.1" not in response.get_data(as_text=True)  # details go to the log only


def test_database_unreachable(app, tmp_path, redis_up):
    database = f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/nowhere"
    response = health_app(app, tmp_path, REDIS_URL=REDIS_URL, database=database).test_client().get("/sante")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable",
                                   "checks": {"database": "unavailable", "broker": "ok"}}


def test_embedded_broker_is_not_a_failure(app, tmp_path):
    """Without REDIS_URL (a workstation: the broker is an SQLite file), only the database counts."""
    response = health_app(app, tmp_path, REDIS_URL="").test_client().get("/sante")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": "ok", "broker": "embedded"}


def test_no_login_needed_even_with_a_session_cookie_of_nobody(app, tmp_path, redis_up):
    client = health_app(app, tmp_path, REDIS_URL=REDIS_URL).test_client()
    client.set_cookie("session", "not-a-valid-session")
    assert client.get("/sante").status_code == 200


@pytest.mark.parametrize("broker_up, expected", [(True, None), (False, "HTTP 503")])
def test_the_container_probe_reads_the_endpoint_over_http(app, tmp_path, redis_up, broker_up, expected):
    """The compose health check (``python -m instruction.probe web URL``) against a real server."""
    url = REDIS_URL if broker_up else f"redis://127.0.0.1:{closed_port()}/0"
    server = make_server("127.0.0.1", 0, health_app(app, tmp_path, REDIS_URL=url), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        problem = probe_web(f"http://127.0.0.1:{server.server_port}/sante")
    finally:
        server.shutdown()
    assert problem is None if expected is None else expected in problem


def test_the_probe_fails_when_nothing_listens():
    assert "Connection refused" in probe_web(f"http://127.0.0.1:{closed_port()}/sante", timeout=2)


def test_the_beat_probe_reads_the_age_of_the_schedule_file(tmp_path):
    from instruction.probe import probe_beat

    schedule = tmp_path / "celerybeat-schedule"
    assert "no schedule file yet" in probe_beat(str(schedule), 600, now=1_000_000.0)
    (tmp_path / "celerybeat-schedule.db").write_bytes(b"")  # the suffix shelve may add
    os.utime(tmp_path / "celerybeat-schedule.db", (999_500.0, 999_500.0))
    assert probe_beat(str(schedule), 600, now=1_000_000.0) is None  # 500 s old
    assert probe_beat(str(schedule), 600, now=1_000_100.0) is None  # 600 s: still fine
    assert "not written for 601 s" in probe_beat(str(schedule), 600, now=1_000_101.0)
