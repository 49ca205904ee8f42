"""`instruction serve` (what `make run` starts): with no BASE_URL, the links in e-mails point to the
host and port actually served."""

from __future__ import annotations

import http.cookiejar
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import select

from instruction import create_app
from instruction.cli import served_url
from instruction.extensions import db

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("host", "port", "url"), [
    ("127.0.0.1", 5101, "http://127.0.0.1:5101"),
    ("localhost", 8080, "http://localhost:8080"),
    ("0.0.0.0", 5000, "http://127.0.0.1:5000"),
    ("::1", 5102, "http://[::1]:5102"),
    ("::", 5103, "http://127.0.0.1:5103"),
])
def test_served_url(host, port, url):
    assert served_url(host, port) == url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_for(instance: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "SECRET_KEY", "BASE_URL", "REDIS_URL", "SMTP_HOST")}
    return {**env, "INSTANCE_PATH": str(instance), **extra}


def cli(*args: str, env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-m", "instruction.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def reset_link_through_a_served_app(instance: Path, port: int, env: dict[str, str]) -> str:
    """Start `instruction serve` on ``port``, ask for a password reset through HTTP as a user
    would, and return the link queued for the e-mail."""
    server = subprocess.Popen([sys.executable, "-m", "instruction.cli", "serve", "--no-worker",
                               "--port", str(port)], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        page_url = f"http://127.0.0.1:{port}/mot-de-passe-oublie"
        for _ in range(200):
            try:
                page = opener.open(page_url, timeout=5).read().decode()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("the server did not answer")
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        form = urllib.parse.urlencode({"csrf_token": token, "email": "agent@region.exemple.fr"}).encode()
        opener.open(page_url, data=form, timeout=10).read()
    finally:
        server.terminate()
        server.wait(timeout=20)
    from instruction.notifications.models import OutboxMessage

    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{instance / 'instruction.db'}"})
    with app.app_context():
        message = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "password_reset")
                                     .order_by(OutboxMessage.id.desc())).first()
        assert message is not None, "no reset e-mail was queued"
        url = message.context["url"]
        db.engine.dispose()
    return url


@pytest.fixture
def instance(tmp_path):
    instance = tmp_path / "instance"
    cli("db", "upgrade", env=env_for(instance))
    os.environ["INSTANCE_PATH"] = str(instance)
    try:
        app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{instance / 'instruction.db'}"})
    finally:
        del os.environ["INSTANCE_PATH"]
    from instruction import clock
    from instruction.accounts.services import create_user

    with app.app_context():
        create_user(email="agent@region.exemple.fr", full_name="Agent", password="une phrase assez longue",
                    role="instructor", now=clock.now())
        db.session.commit()
        db.engine.dispose()
    return instance


def test_without_base_url_links_follow_the_served_port(instance):
    port = free_port()
    url = reset_link_through_a_served_app(instance, port, env_for(instance))
    assert url.startswith(f"http://127.0.0.1:{port}/mot-de-passe/")


def test_base_url_when_set_wins(instance):
    url = reset_link_through_a_served_app(instance, free_port(),
                                          env_for(instance, BASE_URL="https://aides.example"))
    assert url.startswith("https://aides.example/mot-de-passe/")
