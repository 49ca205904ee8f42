"""``GET /sante``: is this web process able to serve? For the container health checks and a load
balancer: the database answers ``SELECT 1`` and the broker (Redis) answers ``PING``.

No login, no session, no template: a small JSON answer, 200 when both answer, 503 when one does not.
The details of a failure go to the log, not to the (public) answer.
"""

from __future__ import annotations

import redis
from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from instruction.extensions import db

bp = Blueprint("health", __name__)

# Short: a health check that hangs is as bad as one that fails (compose waits 5 s).
REDIS_TIMEOUT_SECONDS = 2.0


def database_answers() -> bool:
    try:
        return db.session.execute(text("SELECT 1")).scalar() == 1
    except Exception as error:  # noqa: BLE001 - any failure means "not healthy"
        current_app.logger.error("health: database unavailable: %s", error)
        return False  # the end of the request drops the session (extensions._end_session)


def broker_answers() -> bool | None:
    """True/False for Redis; None with the embedded broker (no REDIS_URL: one machine, no server)."""
    url = current_app.config.get("REDIS_URL")
    if not url:
        return None
    client = redis.Redis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                                  socket_timeout=REDIS_TIMEOUT_SECONDS)
    try:
        return bool(client.ping())
    except Exception as error:  # noqa: BLE001
        current_app.logger.error("health: broker unavailable: %s", error)
        return False
    finally:
        client.close()


@bp.get("/sante")
def status():
    database = database_answers()
    broker = broker_answers()
    healthy = database and broker is not False
    body = {
        "status": "ok" if healthy else "unavailable",
        "checks": {
            "database": "ok" if database else "unavailable",
            "broker": "embedded" if broker is None else ("ok" if broker else "unavailable"),
        },
    }
    response = jsonify(body)
    response.status_code = 200 if healthy else 503
    response.headers["Cache-Control"] = "no-store"
    return response
