"""What `make setup` runs, on the embedded default (SQLite under a fresh instance folder), works
end to end and can be rerun: the demo accounts can log in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from instruction import create_app

STEPS = [["db", "upgrade"], ["territory", "import"], ["campaigns", "load"], ["demo", "load"]]


def instruction(*args: str, instance: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SECRET_KEY")}
    env["INSTANCE_PATH"] = str(instance)
    return subprocess.run([sys.executable, "-m", "instruction.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def test_setup_on_the_embedded_default_is_repeatable(tmp_path):
    instance = tmp_path / "instance"
    for step in STEPS:
        result = instruction(*step, instance=instance)
        assert result.returncode == 0, result.stderr
    assert (instance / "instruction.db").exists()
    secret = (instance / "secret_key").read_text()
    assert len(secret) >= 32 and oct((instance / "secret_key").stat().st_mode)[-3:] == "600"

    again = {tuple(step): instruction(*step, instance=instance) for step in STEPS}
    assert all(r.returncode == 0 for r in again.values())
    assert "aucun changement" in again[("territory", "import")].stdout
    assert "aucun changement" in again[("campaigns", "load")].stdout
    assert (instance / "secret_key").read_text() == secret

    credentials = (instance / "demo-credentials.txt").read_text().split("\n")
    role, email, password = credentials[2].split()
    assert role == "instructor"
    os.environ["INSTANCE_PATH"] = str(instance)
    try:
        app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{instance / 'instruction.db'}"})
    finally:
        del os.environ["INSTANCE_PATH"]
    client = app.test_client()
    page = client.get("/connexion")
    assert page.status_code == 200 and "csrf_token" in page.get_data(as_text=True)
    app.config["WTF_CSRF_ENABLED"] = False
    assert client.post("/connexion", data={"email": email, "password": password}).status_code == 302
    assert "Espace instruction" in client.get("/").get_data(as_text=True)
