"""Private PostgreSQL and Redis servers for the fault tests, and the application as a real server.

The shared services (5432, 6379) are never touched: each fault test starts its own instance on a
free port (PostgreSQL: ``initdb`` into a temporary directory, run as the ``postgres`` user when
the tests run as root) and stops, kills or restarts that one.
"""

from __future__ import annotations

import http.cookiejar
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.test_notifications_delivery import free_port

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as ``postgres`` then."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def wait_until(condition, timeout: float = 30, every: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return condition()


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own (trust authentication, fsync off)."""

    def __init__(self):
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="faults-pg-"))
        self.data = self.directory / "data"
        self.log = self.directory / "server.log"
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)
        subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U",
                                     "postgres", "--no-sync", "-E", "UTF8", "--locale", "C.UTF-8"]),
                       check=True, capture_output=True)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/instruction_faults"

    def _ctl(self, *args: str) -> None:
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), *args]),
                       check=True, capture_output=True, timeout=60)

    def start(self) -> PrivatePostgres:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off")
        self._ctl("-w", "-o", options, "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-w", "-m", mode, "stop")

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.directory, ignore_errors=True)


class PrivateRedis:
    """A redis-server of the test's own, without persistence (what it holds is lost when stopped)."""

    def __init__(self):
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        client = redis.Redis.from_url(self.url)
        assert wait_until(lambda: _pings(client)), "private redis-server did not start"
        client.close()
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None


def _pings(client) -> bool:
    import redis

    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def app_environment(database_url: str, instance: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, DATABASE_URL=database_url, SECRET_KEY="faults-secret-key",
               INSTANCE_PATH=str(instance), REDIS_URL="", RATELIMIT_STORAGE_URI="memory://",
               LOGIN_RATE_LIMIT="1000 per minute", LOGIN_IP_RATE_LIMIT="1000 per minute")
    env.update(extra)
    return env


@dataclass
class AppServer:
    """The application under gunicorn (``wsgi:app``), as in production."""

    env: dict[str, str]
    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> AppServer:
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}", "--workers", "2",
                 "--threads", "4", "--timeout", "60", "--graceful-timeout", "5", "wsgi:app"],
                cwd=PROJECT_ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        assert wait_until(lambda: self.get("/connexion").status == 200, timeout=60), self.log.read_text()[-3000:]
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None

    def get(self, path: str, opener=None):
        return fetch(opener or urllib.request.build_opener(), self.base + path)


@dataclass
class Answer:
    status: int
    body: str
    headers: dict


def fetch(opener, url: str, data: bytes | None = None, timeout: float = 30) -> Answer:
    """One HTTP request; a refused or reset connection is status 0."""
    try:
        with opener.open(url, data=data, timeout=timeout) as response:
            return Answer(response.status, response.read().decode("utf-8", "replace"), dict(response.headers))
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.read().decode("utf-8", "replace"), dict(error.headers))
    except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
        return Answer(0, repr(error), {})


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def logged_in_opener(server: AppServer, email: str, password: str):
    """An opener (cookies kept, redirects not followed) logged in through the real form."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
    page = fetch(opener, server.base + "/connexion")
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.body).group(1)
    from urllib.parse import urlencode

    answer = fetch(opener, server.base + "/connexion",
                   urlencode({"csrf_token": token, "email": email, "password": password}).encode())
    assert answer.status == 302, answer.body[:2000]
    return opener
