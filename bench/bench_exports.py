"""Exports built by the worker at 10,000 and 100,000 rows: seconds and peak memory.

    .venv/bin/python bench/bench_exports.py [--rows 10000 100000] [--formats csv xlsx]

Runs against BENCH_DATABASE_URL (the database ``bench/run.py`` generates; it is migrated to the
current head first). The generator leaves a fourth of its dossiers as drafts or expired drafts,
which no export shows: if the database holds fewer submitted dossiers than the largest
``--rows``, drafts (then expired ones) are turned into received dossiers (bench data only) until
it does.

Each export runs in a subprocess of its own, through the worker's code path: an ``ExportJob``
of an instructor for a view of the queue, then ``instruction.exports.services.build_export``
(what ``worker.build_export`` calls), writing the file to a temporary EXPORT_FOLDER. The view
of N rows is "Tous" submitted from the day that leaves about N dossiers (N = all: no filter), in
the default order. Printed: rows, seconds, file size, the process's resident memory before the
export and its peak (``ru_maxrss``) — the peak should not grow with the rows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.generate import DEFAULT_URL  # noqa: E402

AUTHOR = "bench-instructor-0@region.example"

def _visible() -> str:
    from instruction.dossiers.workflow import VISIBLE_STATES

    return f"state IN ({', '.join(repr(s) for s in VISIBLE_STATES)}) AND discarded_at IS NULL"


VISIBLE = _visible()  # what the queue's "Tous" tab lists (no draft, no expired draft)

# The child: one export, measured in its own process.
CHILD = r"""
import json, resource, sys, time
url, params, fmt, folder = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
from instruction import clock, create_app
from instruction.accounts.models import User
from instruction.backoffice import queries
from instruction.exports import services
from instruction.exports.models import ExportJob
from instruction.extensions import db
from sqlalchemy import delete, select

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20

app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "EXPORT_FOLDER": folder,
                  "NOTIFICATION_DISPATCH_ON_COMMIT": False})
with app.app_context():
    author = db.session.scalar(select(User).where(User.email == sys.argv[5]))
    f = queries.parse_filters(params, queries.FilterOptions.load(), role=author.role, user_id=author.id)
    job = services.request_export(author, f, fmt, rows_total=0, now=clock.now())
    db.session.commit()
    job_id = job.id
    db.session.expunge_all()
    before = rss_mb()
    start = time.perf_counter()
    summary = services.build_export(job_id, now=clock.now())
    elapsed = time.perf_counter() - start
    job = db.session.get(ExportJob, job_id)
    result = {"rows": job.rows_done, "seconds": round(elapsed, 2), "size_mb": round(job.size_bytes / 2**20, 1),
              "rss_before_mb": round(before), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
              "status": job.status, "summary": summary}
    services.path_for(job.storage_key).unlink()
    db.session.execute(delete(ExportJob).where(ExportJob.id == job_id))
    db.session.commit()
print(json.dumps(result))
"""


def prepare(url: str, rows: int) -> None:
    """Migrate to the current head; make sure at least ``rows`` dossiers are submitted."""
    from flask_migrate import upgrade

    from instruction import create_app
    from instruction.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench"})
    with app.app_context():
        upgrade()
        visible = db.session.scalar(sa.text(f"SELECT count(*) FROM dossier WHERE {VISIBLE}"))
        if visible < rows:
            promoted = db.session.execute(sa.text(
                "UPDATE dossier SET state = 'received', submitted_at = created_at, "
                "implicit_decision_on = (created_at + interval '2 months')::date "
                "WHERE id IN (SELECT id FROM dossier WHERE state IN ('draft', 'expired') AND discarded_at IS NULL "
                "ORDER BY state, id LIMIT :n)"), {"n": rows - visible}).rowcount
            db.session.commit()
            print(f"{promoted:,} drafts turned into received dossiers (bench data) for {rows:,} rows", flush=True)
        db.session.execute(sa.text("ANALYZE dossier"))
        db.session.commit()
        db.engine.dispose()


def view_of(engine, rows: int) -> dict[str, str]:
    """The queue's parameters of a view of about ``rows`` dossiers (all of them: no filter)."""
    with engine.connect() as conn:
        if rows >= conn.execute(sa.text(f"SELECT count(*) FROM dossier WHERE {VISIBLE}")).scalar():
            return {"onglet": "tous"}
        day = conn.execute(sa.text(
            f"SELECT (submitted_at AT TIME ZONE 'Europe/Paris')::date FROM dossier WHERE {VISIBLE} "
            "AND submitted_at IS NOT NULL "
            "ORDER BY submitted_at DESC, id DESC OFFSET :n LIMIT 1"), {"n": rows - 1}).scalar()
    return {"onglet": "tous", "depose_du": day.isoformat()}


def measure(url: str, params: dict, fmt: str) -> dict:
    folder = tempfile.mkdtemp(prefix="bench-exports-")
    output = subprocess.run([sys.executable, "-c", CHILD, url, json.dumps(params), fmt, folder, AUTHOR],
                            cwd=ROOT, check=True, capture_output=True, text=True,
                            env=dict(os.environ, INSTANCE_PATH=folder)).stdout
    return json.loads(output.strip().splitlines()[-1])


def export_figures(url: str, rows: list[int], formats: list[str], sorts: tuple[str, ...] = ()) -> dict:
    prepare(url, max(rows))
    engine = sa.create_engine(url)
    results = {}
    for n in sorted(rows):
        params = view_of(engine, n)
        for fmt in formats:
            label = f"{fmt.upper()}, {n:,} rows"
            results[label] = {"params": params, **measure(url, params, fmt)}
            print(f"{label}: {results[label]}", flush=True)
    for sort in sorts:
        params = {"onglet": "tous", "tri": sort, "ordre": "desc"}
        label = f"CSV, {max(rows):,} rows sorted by {sort} (descending)"
        results[label] = {"params": params, **measure(url, params, "csv")}
        print(f"{label}: {results[label]}", flush=True)
    engine.dispose()
    return results


def report(results: dict) -> None:
    print(f"\n{'export (worker code path)':<48}{'rows':>9}{'seconds':>9}{'MB':>7}{'RSS before':>12}{'peak RSS':>10}")
    for label, f in results.items():
        print(f"{label:<48}{f['rows']:>9,}{f['seconds']:>9.2f}{f['size_mb']:>7.1f}{f['rss_before_mb']:>10} MB"
              f"{f['peak_rss_mb']:>7} MB")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--formats", nargs="+", default=["csv", "xlsx"], choices=["csv", "xlsx"])
    parser.add_argument("--sorted-by", nargs="*", default=["demandeur"],
                        help="also export every row in these orders (CSV), e.g. demandeur reste")
    options = parser.parse_args(argv)
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    report(export_figures(url, options.rows, options.formats, tuple(options.sorted_by)))


if __name__ == "__main__":
    main()
