"""What `make setup` runs, on the embedded default (SQLite under a fresh instance folder), works
end to end and can be rerun: the demo accounts can log in."""

from __future__ import annotations

import json
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


# --- the same chain, years ahead -------------------------------------------------------------------

FUTURE = "2031-06-15 10:00:00"  # far past the dates written in the parameter files
FAKETIME = "/usr/bin/faketime"  # Debian's faketime (`make test` installs it)

# Run under faketime: the demo as the applicant and the instructor see it that day.
PROBE = """
import json, os, sys
from instruction import clock, create_app
from instruction.campaigns.services import current_campaign
from instruction.dossiers.models import Dossier
from instruction.extensions import db
from sqlalchemy import func, select
instance = sys.argv[1]
app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{instance}/instruction.db", "WTF_CSRF_ENABLED": False})
lines = [line.split() for line in open(f"{instance}/demo-credentials.txt", encoding="utf-8") if line.strip()]
report = {}
with app.app_context():
    campaign = current_campaign()
    now = clock.now()
    report["now"] = now.isoformat()
    report["open"] = campaign.opens_at <= now < campaign.deadline_at
    report["states"] = dict(db.session.execute(select(Dossier.state, func.count()).group_by(Dossier.state)).all())
for role, email, password in lines:
    client = app.test_client()
    assert client.post("/connexion", data={"email": email, "password": password}).status_code == 302
    page = client.get("/portail/" if role == "applicant" else "/instruction/", follow_redirects=True)
    report.setdefault("pages", {})[email] = [page.status_code, 'data-testid="time-left"' in page.get_data(as_text=True)]
print(json.dumps(report))
"""


def faked(*command: str, instance: Path) -> subprocess.CompletedProcess:
    # Without the suite's own faketime, if any (`make test-2031`): faketime would otherwise compute
    # its offset from the already faked clock, and this test's date would not be the one it sets.
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SECRET_KEY", "LD_PRELOAD")
           and not k.startswith("FAKETIME")}
    env |= {"INSTANCE_PATH": str(instance), "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    return subprocess.run([FAKETIME, FUTURE, *command], env=env, capture_output=True, text=True,
                          timeout=600)


def test_setup_and_the_demo_work_years_ahead(tmp_path):
    """`make setup` under a clock set to 2031: the demo campaign opens around that day, so the demo
    dossiers reach their states through the services and the applicant sees a campaign open."""
    assert Path(FAKETIME).exists(), "faketime is missing: `make test` installs it (apt-get install faketime)"
    instance = tmp_path / "instance"
    year = faked(sys.executable, "-c", "import datetime; print(datetime.date.today().year)", instance=instance)
    assert year.stdout.strip() == "2031"
    for step in STEPS:
        result = faked(sys.executable, "-m", "instruction.cli", *step, instance=instance)
        assert result.returncode == 0, result.stderr
    again = faked(sys.executable, "-m", "instruction.cli", "campaigns", "load", instance=instance)
    assert again.returncode == 0 and "aucun changement" in again.stdout  # the demo's window stays
    jobs = faked(sys.executable, "-m", "instruction.cli", "worker", "run-jobs", "--job", "deadline",
                 instance=instance)
    assert jobs.returncode == 0 and "0 brouillon(s) clos" in jobs.stdout, jobs.stdout + jobs.stderr

    probe = faked(sys.executable, "-c", PROBE, str(instance), instance=instance)
    assert probe.returncode == 0, probe.stderr
    report = json.loads(probe.stdout.strip().splitlines()[-1])
    assert report["now"].startswith("2031-06-15T")
    assert report["open"] is True
    assert report["states"] == {"draft": 1, "received": 1, "incomplete": 1, "eligible": 1,
                                "granted": 1, "paid": 1}
    assert report["pages"]["mairie@agencourt.exemple.fr"] == [200, True]  # the campaign is open
    assert all(status == 200 for status, _ in report["pages"].values())


def test_the_demo_window_surrounds_the_day_the_demo_is_loaded():
    from datetime import UTC, datetime

    from instruction.demo import demo_window
    from instruction.rules.parameters import PARIS

    opens_at, deadline = demo_window(datetime(2031, 6, 15, 23, 30, tzinfo=UTC))  # 16 June in Paris
    assert opens_at == datetime(2030, 12, 16, 0, 0, tzinfo=PARIS)  # 182 days before
    assert deadline == datetime(2032, 6, 16, 0, 0, tzinfo=PARIS)  # open until 15 June 2032 included
