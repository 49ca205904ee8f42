"""The production stack (docker-compose.yml): gunicorn behind the reverse proxy only."""

from __future__ import annotations

from pathlib import Path

import yaml

from instruction.config import load_config

ROOT = Path(__file__).resolve().parent.parent


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_gunicorn_is_not_published_and_the_proxy_is():
    services = compose()["services"]
    assert "ports" not in services["web"], "gunicorn must be reached through the proxy only"
    assert services["proxy"]["ports"] == ["80:80", "443:443"]
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"proxy"}


def test_one_trusted_proxy_exactly_where_there_is_one():
    services = compose()["services"]
    assert services["web"]["environment"]["PROXY_COUNT"] == "1"
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    assert "reverse_proxy web:8000" in caddyfile


def test_no_proxy_is_trusted_by_default(tmp_path, monkeypatch):
    monkeypatch.delenv("PROXY_COUNT", raising=False)
    assert load_config(tmp_path, {"SECRET_KEY": "k"})["PROXY_COUNT"] == 0


def test_a_forged_x_forwarded_for_is_ignored_by_default(client, session, fresh_limiter):
    """Exposed directly (PROXY_COUNT=0), the client's own X-Forwarded-For does not move its address."""
    from tests import factories

    user = factories.user("instructor")
    session.commit()
    statuses = [client.post("/connexion", data={"email": user.email, "password": "faux"},
                            headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code for n in range(11)]
    assert statuses[-1] == 429
