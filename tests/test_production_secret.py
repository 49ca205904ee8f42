"""In production (INSTRUCTION_ENV=production) the app refuses to start without a strong SECRET_KEY."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from instruction import create_app
from instruction.config import WeakSecretKey, secret_key_weakness
from instruction.web.request_log import HANDLER_NAME

ROOT = Path(__file__).resolve().parent.parent
# Drawn once with secrets.token_urlsafe(32) and secrets.token_hex(32), written here by hand.
STRONG_URLSAFE = "q3Zr8vN1xK0bT7mYcW5hJp2LdF9sGaE4uVoRiXyB6nQ"
STRONG_HEX = "9f2c4e71b8d05a3e6c1f7b29d4e8a0c35b7e1d9f2a6c8e04b1d3f5a7c9e2b4d6"


@pytest.fixture
def production(monkeypatch, tmp_path):
    monkeypatch.setenv("INSTRUCTION_ENV", "production")
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.delenv("SECRET_KEY", raising=False)
    root = logging.getLogger()
    level = root.level
    yield tmp_path / "instance"
    for handler in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(handler)  # production logs JSON: not for the rest of the suite
    root.setLevel(level)


def test_a_missing_key_is_refused_and_none_is_generated(production):
    with pytest.raises(WeakSecretKey) as refused:
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    message = str(refused.value)
    assert "Démarrage refusé (INSTRUCTION_ENV=production) : SECRET_KEY n'est pas définie" in message
    assert "secrets.token_urlsafe(48)" in message and "docs/deploy.md" in message
    assert not (production / "secret_key").exists()


@pytest.mark.parametrize("key, reason", [
    ("dev", "trop courte (3 caractères, 32 au moins)"),
    ("change-me", "trop courte (9 caractères, 32 au moins)"),
    ("k" * 31, "trop courte (31 caractères, 32 au moins)"),
    ("change-me-change-me-change-me-change-me", "valeur d'exemple"),
    ("my-super-secret-key-for-production-2031", "valeur d'exemple"),
    ("ThisIsTheDefaultKeyOfTheApplication1234", "valeur d'exemple"),
    ("a" * 64, "trop peu d'entropie (environ 0 bits"),
    ("ab" * 32, "trop peu d'entropie (environ 64 bits"),
    ("01234567" * 5, "trop peu d'entropie (environ 120 bits"),  # 40 characters, 3 bits each
])
def test_a_weak_key_is_refused_with_its_reason(production, monkeypatch, key, reason):
    monkeypatch.setenv("SECRET_KEY", key)
    with pytest.raises(WeakSecretKey, match="Démarrage refusé") as refused:
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert reason in str(refused.value)


def test_a_weak_key_given_by_the_caller_is_refused_too(production):
    with pytest.raises(WeakSecretKey):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "dev"})


@pytest.mark.parametrize("key", [STRONG_URLSAFE, STRONG_HEX])
def test_a_drawn_key_starts_the_app_in_production(production, monkeypatch, key):
    monkeypatch.setenv("SECRET_KEY", key)
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert app.config["SECRET_KEY"] == key
    assert app.config["PRODUCTION"] is True
    assert app.config["LOG_FORMAT"] == "json"


def test_weakness_thresholds():
    assert secret_key_weakness(STRONG_URLSAFE) is None
    assert secret_key_weakness(STRONG_HEX) is None
    assert secret_key_weakness(STRONG_URLSAFE[:32]) is None  # 32 drawn characters: enough
    assert "trop courte" in secret_key_weakness(STRONG_URLSAFE[:31])
    assert "n'est pas définie" in secret_key_weakness("")


def test_outside_production_a_simple_key_is_accepted(monkeypatch, tmp_path):
    """A workstation or the tests: no check (and a key is generated under instance/ when missing)."""
    monkeypatch.delenv("INSTRUCTION_ENV", raising=False)
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    assert create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "dev"}).config["PRODUCTION"] is False
    monkeypatch.delenv("SECRET_KEY", raising=False)
    create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert len((tmp_path / "instance" / "secret_key").read_text().strip()) == 64


@pytest.mark.parametrize("key, started", [("change-me", False), (STRONG_URLSAFE, True)])
def test_gunicorns_entry_point_refuses_to_load(tmp_path, key, started):
    """What the operator sees: `import wsgi` (gunicorn's first step) fails with the message."""
    env = {**os.environ, "INSTRUCTION_ENV": "production", "SECRET_KEY": key,
           "INSTANCE_PATH": str(tmp_path), "DATABASE_URL": "sqlite://"}
    done = subprocess.run([sys.executable, "-c", "import wsgi"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode == 0) is started, done.stderr
    if not started:
        assert "WeakSecretKey: Démarrage refusé (INSTRUCTION_ENV=production) : SECRET_KEY est trop courte" in done.stderr
