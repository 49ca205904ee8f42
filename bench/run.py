"""`make bench`: the region-scale figures, measured against a real server on PostgreSQL.

    .venv/bin/python bench/run.py [--dossiers 100000] [--repeat 30] [--skip-generate] [--only NAME ...]

1. The database named by BENCH_DATABASE_URL (default ``instruction_bench`` on the local
   PostgreSQL) is DROPPED, recreated, migrated, loaded with the territory and the campaigns, then
   with ``--dossiers`` generated dossiers (``bench/generate.py``, seed 2021).
2. gunicorn serves the app with 2 sync workers on a free port; each page is requested ``--repeat``
   times after a warm-up, over loopback, logged in as the role that uses it. Each figure is the
   median and p95 in ms, and the ratio of its median to the login page's median measured in the
   same run (the trivial route: compare ratios, the machine is small and noisy).
3. Grants: 8 concurrent clients grant eligible dossiers through the real form, all in one envelope,
   then each in its own; grants per second and the number of envelopes over their cap.
4. The nightly jobs, run in-process on the generated drafts: seconds and SQL statements.
5. ``instruction simulate`` over 10,000 dossiers: dossiers per second, SELECTs, peak memory.
6. Exports built by the worker (``bench/bench_exports.py``), CSV and XLSX of 10,000 and 100,000
   rows, each in a process of its own: seconds and peak memory. Run last: it turns drafts into
   received dossiers when the data set has fewer than 100,000 submitted ones.

Results go to ``bench/out/results.json`` (not committed) and are printed as a table. Speed is never
asserted here; bench/README.md keeps the latest figures with their date and machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from http.cookiejar import CookieJar
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.generate import DEFAULT_URL, PASSWORD, generate, prepare  # noqa: E402

OUT = ROOT / "bench" / "out"


# --- a small HTTP client with cookies and forms ---------------------------------------------------


class _Forms(HTMLParser):
    """Every <form> of a page: its action and its named inputs' values."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._current: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self._current = {"action": attrs.get("action") or "", "fields": {}}
            self.forms.append(self._current)
        elif tag in ("input", "textarea", "select") and self._current is not None and attrs.get("name"):
            if attrs.get("type") in ("checkbox", "radio") and "checked" not in attrs:
                return
            self._current["fields"][attrs["name"]] = attrs.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


class Client:
    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()),
                                                  _NoRedirect())

    def request(self, path: str, data: dict | None = None) -> tuple[int, str]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        try:
            with self.opener.open(self.base + path, data=body, timeout=120) as response:
                return response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode("utf-8", "replace")

    def form(self, path: str, action_pattern: str = "", has_field: str = "") -> dict:
        """The first form of the page whose action matches ``action_pattern`` and that has an
        input named ``has_field``."""
        status, html = self.request(path)
        parser = _Forms()
        parser.feed(html)
        for form in parser.forms:
            if re.search(action_pattern, form["action"]) and (not has_field or has_field in form["fields"]):
                return form
        raise LookupError(f"no form matching {action_pattern!r} on {path} (HTTP {status})")

    def log_in(self, email: str) -> None:
        form = self.form("/connexion", has_field="password")
        status, _ = self.request(form["action"] or "/connexion",
                                 {**form["fields"], "email": email, "password": PASSWORD})
        if status != 302:
            raise RuntimeError(f"login of {email} answered {status}")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


# --- measuring ------------------------------------------------------------------------------------


def summary(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {"median_ms": round(statistics.median(ordered) * 1000, 2),
            "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000, 2), "n": len(ordered)}


def timed(client: Client, path: str, repeat: int) -> dict:
    for _ in range(3):
        client.request(path)
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        status, _ = client.request(path)
        samples.append(time.perf_counter() - start)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}")
    return summary(samples)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """gunicorn with 2 sync workers, as in the production stack."""

    def __init__(self, url: str, instance: str):
        self.port = free_port()
        env = dict(os.environ, DATABASE_URL=url, SECRET_KEY="bench-" + "x" * 40, INSTANCE_PATH=instance,
                   BASE_URL=f"http://127.0.0.1:{self.port}", LOGIN_RATE_LIMIT="100000 per minute",
                   LOGIN_IP_RATE_LIMIT="100000 per minute", NOTIFICATION_DISPATCH_ON_COMMIT="false")
        self.process = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{self.port}",
             "--log-level", "warning", "wsgi:app"], cwd=ROOT, env=env)
        self.base = f"http://127.0.0.1:{self.port}"
        for _ in range(200):
            try:
                urllib.request.urlopen(self.base + "/connexion", timeout=2)
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("gunicorn did not start")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


# --- the figures ----------------------------------------------------------------------------------


def targets(engine) -> dict:
    """The objects the pages are measured on, chosen in the generated data."""
    with engine.connect() as conn:
        one = conn.execute(sa.text(
            "SELECT d.id FROM dossier d JOIN document doc ON doc.dossier_id = d.id "
            "WHERE d.state <> 'draft' GROUP BY d.id ORDER BY count(*) DESC, d.id LIMIT 1")).scalar()
        middle = conn.execute(sa.text(
            "SELECT id FROM dossier WHERE state IN ('received', 'incomplete', 'eligible') "
            "ORDER BY id OFFSET (SELECT count(*) / 2 FROM dossier WHERE state IN ('received', 'incomplete', 'eligible')) "
            "LIMIT 1")).scalar()
        epci = conn.execute(sa.text(
            "SELECT e.siren FROM dossier d JOIN collectivite c ON c.id = d.collectivite_id "
            "JOIN collectivite e ON e.id = COALESCE(c.epci_id, c.id) WHERE e.kind = 'epci' "
            "GROUP BY e.siren ORDER BY count(*) DESC LIMIT 1")).scalar()
        busiest = conn.execute(sa.text(
            "SELECT u.email FROM dossier d JOIN user_account u ON u.collectivite_id = d.collectivite_id "
            "AND u.role = 'applicant' GROUP BY u.email ORDER BY count(*) DESC LIMIT 1")).scalar()
        counts = conn.execute(sa.text(
            "SELECT (SELECT count(*) FROM dossier), (SELECT count(*) FROM expense_line), "
            "(SELECT count(*) FROM document), (SELECT count(*) FROM audit_event)")).one()
    return {"dossier_alone": one, "dossier_in_queue": middle, "busiest_epci": epci,
            "busiest_agent": busiest, "rows": dict(zip(("dossiers", "expense_lines", "documents",
                                                          "audit_events"), counts, strict=True))}


def page_figures(base: str, t: dict, repeat: int) -> dict:
    instructor = Client(base)
    instructor.log_in("bench-instructor-0@region.example")
    agent = Client(base)
    agent.log_in(t["busiest_agent"])
    pages: dict[str, tuple[Client, str]] = {
        "login page": (Client(base), "/connexion"),
        "queue, default tab": (instructor, "/instruction/"),
        "queue, searched + filtered + sorted": (
            instructor, "/instruction/?onglet=tous&q=communaut%C3%A9&aide=4&tri=demandeur&ordre=desc"),
        "queue, page 500": (instructor, "/instruction/?onglet=tous&page=500"),
        "dossier page from the queue (previous / next)": (
            instructor, f"/instruction/dossiers/{t['dossier_in_queue']}?onglet=tous&tri=demandeur"),
        "dossier page alone": (instructor, f"/instruction/dossiers/{t['dossier_alone']}"),
        "EPCI envelopes page (busiest territory)": (instructor, f"/instruction/epci/{t['busiest_epci']}"),
        "portal home (busiest collectivité)": (agent, "/portail/"),
    }
    results = {}
    for label, (client, path) in pages.items():
        results[label] = {"path": path, **timed(client, path, repeat)}
    base_median = results["login page"]["median_ms"]
    for figure in results.values():
        figure["ratio_to_login"] = round(figure["median_ms"] / base_median, 2)
    return results


def grant_figures(base: str, engine, clients: int = 8, per_client: int = 12) -> dict:
    """Grants per second through the real form, in one envelope and in many."""
    with engine.connect() as conn:
        # The scope with the most eligible dossiers among those whose envelope has room left.
        crowded = conn.execute(sa.text(
            "SELECT d.cap_scope FROM dossier d LEFT JOIN envelope e ON e.scope = d.cap_scope "
            "AND e.aid_number = d.aid_number AND e.campaign_id = d.campaign_id "
            "WHERE d.state = 'eligible' AND d.cap_scope IS NOT NULL "
            "AND COALESCE(e.cap_limit - e.consumed, 1000) >= 1000 "
            "GROUP BY d.cap_scope ORDER BY count(*) DESC LIMIT 1")).scalar()
        one = conn.execute(sa.text(
            "SELECT id FROM dossier WHERE state = 'eligible' AND cap_scope = :s ORDER BY id LIMIT :n"),
            {"s": crowded, "n": clients * per_client}).scalars().all()
        many = conn.execute(sa.text(
            "SELECT DISTINCT ON (d.cap_scope) d.id FROM dossier d LEFT JOIN envelope e ON e.scope = d.cap_scope "
            "AND e.aid_number = d.aid_number AND e.campaign_id = d.campaign_id "
            "WHERE d.state = 'eligible' AND d.cap_scope <> :s AND COALESCE(e.cap_limit - e.consumed, 1000) >= 1000 "
            "ORDER BY d.cap_scope, d.id LIMIT :n"), {"s": crowded, "n": clients * per_client}).scalars().all()
    results = {}
    for label, ids in (("one envelope", one), ("many envelopes", many)):
        results[label] = _grant_run(base, engine, list(ids), clients)
    return results


def _grant_run(base: str, engine, ids: list[int], clients: int) -> dict:
    shares = [ids[k::clients] for k in range(clients)]
    prepared: list[list[tuple[str, dict]]] = [[] for _ in range(clients)]
    sessions = []
    for k in range(clients):
        client = Client(base)
        client.log_in(f"bench-instructor-{k % 10}@region.example")
        sessions.append(client)
        for dossier_id in shares[k]:
            form = client.form(f"/instruction/dossiers/{dossier_id}", r"/actions/grant$")
            # 10,00 € each, so that a hundred grants fit in one envelope: the cap is still checked.
            prepared[k].append((form["action"], {**form["fields"], "amount": "10,00"}))
    outcomes: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def work(k: int):
        barrier.wait()
        for action, fields in prepared[k]:
            status, _ = sessions[k].request(action, fields)
            with lock:
                outcomes.append(status)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    with engine.connect() as conn:
        granted = conn.execute(sa.text("SELECT count(*) FROM dossier WHERE id = ANY(:ids) AND state = 'granted'"),
                               {"ids": ids}).scalar()
        over = conn.execute(sa.text("SELECT count(*) FROM envelope WHERE consumed > cap_limit")).scalar()
    return {"posts": len(outcomes), "granted": granted, "refused": len(outcomes) - granted,
            "seconds": round(elapsed, 2), "posts_per_s": round(len(outcomes) / elapsed, 1),
            "grants_per_s": round(granted / elapsed, 1), "envelopes_over_cap": over}


class StatementCounter:
    def __init__(self, engine):
        self.engine, self.count, self.selects = engine, 0, 0

    def __enter__(self):
        sa.event.listen(self.engine, "before_cursor_execute", self._on)
        return self

    def __exit__(self, *exc):
        sa.event.remove(self.engine, "before_cursor_execute", self._on)

    def _on(self, conn, cursor, statement, parameters, context, executemany):
        self.count += 1
        self.selects += statement.lstrip().upper().startswith("SELECT")


def _job_runner() -> Callable:
    """The function that runs one periodic job by name, wherever the worker keeps it."""
    for module in ("instruction.dossiers.jobs", "instruction.notifications.jobs", "instruction.jobs"):
        try:
            return __import__(module, fromlist=["run_job"]).run_job
        except (ImportError, AttributeError):
            continue
    raise ImportError("no run_job found")


def _job_names() -> dict:
    for module in ("instruction.notifications.jobs", "instruction.dossiers.jobs", "instruction.jobs"):
        try:
            return dict(__import__(module, fromlist=["JOBS"]).JOBS)
        except (ImportError, AttributeError):
            continue
    return {}


def job_figures(app) -> dict:
    from sqlalchemy import select

    from instruction.campaigns.models import Campaign
    from instruction.extensions import db

    run_job = _job_runner()
    names = _job_names()
    reminders = next((n for n in names if "remind" in n), "reminders")
    deadline = next((n for n in names if "deadline" in n or "expire" in n), "deadline")
    results = {}
    with app.app_context():
        campaign = db.session.scalar(select(Campaign).where(Campaign.code == "demo"))
        drafts = db.session.scalar(sa.text("SELECT count(*) FROM dossier WHERE state = 'draft'"))
        the_eve = campaign.deadline_at - timedelta(hours=20)  # inside every reminder's window
        after = campaign.deadline_at + timedelta(minutes=5)
        for label, name, now in (("reminders job, first run", reminders, the_eve),
                                 ("reminders job, second run (nothing to send)", reminders, the_eve),
                                 ("deadline job, first run", deadline, after)):
            with StatementCounter(db.engine) as counter:
                start = time.perf_counter()
                summary_text = run_job(name, now=now)
                elapsed = time.perf_counter() - start
            db.session.remove()
            results[label] = {"job": name, "drafts": drafts, "seconds": round(elapsed, 2),
                              "statements": counter.count, "summary": summary_text}
    return results


def simulate_figures(app, url: str, n: int = 10_000) -> dict:
    """``instruction simulate`` on n dossiers over real beneficiaries (a subprocess, for memory)."""
    from instruction.extensions import db

    with app.app_context():
        communes = db.session.execute(sa.text(
            "SELECT insee FROM collectivite WHERE kind = 'commune' AND population < 1000 ORDER BY insee")).scalars().all()
        epcis = db.session.execute(sa.text(
            "SELECT siren FROM collectivite WHERE kind = 'epci' ORDER BY siren")).scalars().all()
    dossiers = []
    for i in range(n):
        if i % 2:
            dossiers.append({"ref": str(i), "aid": 1, "beneficiary": {"commune": communes[i % len(communes)]},
                             "submitted_at": "2021-06-01T10:00:00+02:00",
                             "expenses": [{"category": "equipement", "amount_ht": "1800.00", "pack": 1}]})
        else:
            dossiers.append({"ref": str(i), "aid": 4, "beneficiary": {"epci": epcis[i % len(epcis)]},
                             "submitted_at": "2021-06-01T10:00:00+02:00",
                             "expenses": [{"category": "cablage", "amount_ht": "12000.00"}]})
    source = Path(tempfile.mkdtemp(prefix="bench-simulate-")) / "input.json"
    source.write_text(json.dumps({"campaign": "pair-2021", "dossiers": dossiers}))
    code = ("import resource, sys, time\n"
            "from sqlalchemy import event\n"
            "from instruction import create_app\n"
            "from instruction.extensions import db\n"
            "app = create_app({'SQLALCHEMY_DATABASE_URI': sys.argv[1], 'SECRET_KEY': 'bench'})\n"
            "selects = [0]\n"
            "with app.app_context():\n"
            "    event.listen(db.engine, 'before_cursor_execute', lambda *a: selects.__setitem__(0, selects[0] + a[2].lstrip().upper().startswith('SELECT')))\n"
            "runner = app.test_cli_runner()\n"
            "start = time.perf_counter()\n"
            "result = runner.invoke(args=['simulate', sys.argv[2]])\n"
            "elapsed = time.perf_counter() - start\n"
            "assert result.exit_code == 0, result.output[:500]\n"
            "print(elapsed, selects[0], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    output = subprocess.run([sys.executable, "-c", code, url, str(source)], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.split()
    elapsed, selects, rss_kb = float(output[-3]), int(output[-2]), int(output[-1])
    return {"instruction simulate": {"dossiers": n, "seconds": round(elapsed, 2),
                                     "dossiers_per_s": round(n / elapsed), "selects": selects,
                                     "peak_rss_mb": round(rss_kb / 1024)}}


# --- the run ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dossiers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--skip-generate", action="store_true", help="reuse the database as it is")
    parser.add_argument("--only", nargs="*", default=["pages", "grants", "jobs", "simulate", "exports"],
                        help="which groups of figures: pages grants jobs simulate exports")
    options = parser.parse_args(argv)
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    instance = tempfile.mkdtemp(prefix="bench-instance-")
    os.environ["INSTANCE_PATH"] = instance
    results: dict = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
                     "machine": f"{platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()}",
                     "dossiers": options.dossiers}
    if options.skip_generate:
        from instruction import create_app

        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench"})
    else:
        app = prepare(url)
        start = time.perf_counter()
        results["generated"] = generate(app, options.dossiers, seed=2021)
        results["generated"]["seconds"] = round(time.perf_counter() - start, 1)
        print(f"generated {options.dossiers:,} dossiers in {results['generated']['seconds']} s", flush=True)
    engine = sa.create_engine(url)
    t = targets(engine)
    results["targets"] = t
    if "pages" in options.only or "grants" in options.only:
        server = Server(url, instance)
        try:
            if "pages" in options.only:
                results["pages"] = page_figures(server.base, t, options.repeat)
            if "grants" in options.only:
                results["grants"] = grant_figures(server.base, engine)
        finally:
            server.stop()
    if "jobs" in options.only:
        results["jobs"] = job_figures(app)
    if "simulate" in options.only:
        results["simulate"] = simulate_figures(app, url)
    if "exports" in options.only:
        from bench import bench_exports

        results["exports"] = bench_exports.export_figures(url, [10_000, 100_000], ["csv", "xlsx"], ("demandeur",))
    engine.dispose()
    OUT.mkdir(exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str))
    report(results)


def report(results: dict) -> None:
    print(f"\nRegion-scale benchmark — {results['date']} — {results['machine']}")
    if "targets" in results:
        print("data: " + ", ".join(f"{v:,} {k}" for k, v in results["targets"]["rows"].items()))
    if "pages" in results:
        print(f"\n{'page':<50}{'median ms':>10}{'p95 ms':>9}{'× login':>9}")
        for label, f in results["pages"].items():
            print(f"{label:<50}{f['median_ms']:>10.1f}{f['p95_ms']:>9.1f}{f['ratio_to_login']:>9.1f}")
    if "grants" in results:
        print(f"\n{'grants, 8 concurrent clients':<30}{'POSTs':>7}{'granted':>9}{'grants/s':>10}{'POST/s':>8}{'over cap':>10}")
        for label, f in results["grants"].items():
            print(f"{label:<30}{f['posts']:>7}{f['granted']:>9}{f['grants_per_s']:>10.1f}{f['posts_per_s']:>8.1f}"
                  f"{f['envelopes_over_cap']:>10}")
    if "jobs" in results:
        print(f"\n{'job':<48}{'drafts':>8}{'seconds':>9}{'statements':>12}")
        for label, f in results["jobs"].items():
            print(f"{label:<48}{f['drafts']:>8,}{f['seconds']:>9.2f}{f['statements']:>12,}")
    if "simulate" in results:
        f = results["simulate"]["instruction simulate"]
        print(f"\ninstruction simulate: {f['dossiers']:,} dossiers in {f['seconds']} s = {f['dossiers_per_s']:,} "
              f"dossiers/s, {f['selects']:,} SELECTs, peak {f['peak_rss_mb']} MB")
    if "exports" in results:
        from bench import bench_exports

        bench_exports.report(results["exports"])
    print(f"\nresults: {OUT / 'results.json'}  (peak memory of this process: "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB)")


if __name__ == "__main__":
    main()
