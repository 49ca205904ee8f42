"""Benchmark of the instruction queue's first page with N = 1,000 and N = 10,000 dossiers.

Run from the project root, with PostgreSQL running:

    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/instruction_bench \\
        .venv/bin/python bench/bench_queue.py [--repeat 40]

The database named by BENCH_DATABASE_URL (default: the one above) is DROPPED and recreated, then
migrated and loaded with the territory and the campaigns; the dossiers are bulk-inserted over every
EPCI of the region, with ten instructors. For each N it prints the median and p95 (ms) of one
GET of the queue as an instructor, for a few views (default tab, every dossier, sorted by a joined
column with a search, a late page), the number of SQL statements of one GET, and the time of a
dossier page opened from the queue (its previous / next are computed over the filtered queue);
then the ratio N=10,000 / N=1,000. The statement count must not change with N; the times grow
with the counting and sorting the database does (compare ratios, not absolute times: the
machine is small and noisy). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/instruction_bench"
VIEWS = {
    "à instruire (défaut)": {},
    "tous": {"onglet": "tous"},
    "tri instructeur + recherche": {"onglet": "tous", "tri": "instructeur", "ordre": "desc", "q": "cc"},
    "page 20": {"onglet": "tous", "page": "20"},
}


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000


def timed_get(client, path: str, args: dict, repeat: int) -> list[float]:
    for _ in range(3):  # warm-up: caches, compiled statements
        client.get(path, query_string=args)
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(path, query_string=args)
        samples.append(time.perf_counter() - start)
        assert response.status_code == 200, response.status_code
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=40)
    options = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    os.environ.setdefault("INSTANCE_PATH", tempfile.mkdtemp(prefix="bench-queue-"))
    sys.path.insert(0, str(ROOT))  # tests.factories: the same bulk insert as the tests

    from flask_migrate import upgrade
    from sqlalchemy import event, select

    from bench.generate import recreate_database
    from instruction import create_app
    from instruction.accounts.models import User
    from instruction.campaigns.services import sync_campaigns
    from instruction.dossiers.models import Dossier
    from instruction.extensions import db
    from instruction.territory.models import Epci
    from instruction.territory.services import import_territory
    from tests import factories

    recreate_database(url)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False})
    with app.app_context():
        upgrade()
        import_territory()
        sync_campaigns()
        instructors = [factories.user("instructor") for _ in range(10)]
        db.session.commit()
        email, instructor_ids = instructors[0].email, [i.id for i in instructors]

    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    results: dict[int, dict[str, tuple[float, float, int]]] = {}
    inserted = 0
    for n in (1_000, 10_000):
        with app.app_context():
            instructors = db.session.scalars(select(User).where(User.id.in_(instructor_ids))).all()
            epcis = db.session.scalars(select(Epci).order_by(Epci.siren)).all()
            factories.bulk_dossiers(n - inserted, collectivites=epcis, assignees=instructors)
            db.session.commit()
            inserted = n
            db.session.execute(sa.text("ANALYZE"))
            db.session.commit()
            middle = db.session.scalar(select(Dossier.id).order_by(Dossier.id).offset(n // 2).limit(1))
            engine = db.engine
        client = app.test_client()
        client.post("/connexion", data={"email": email, "password": factories.PASSWORD})
        results[n] = {}
        for label, args in VIEWS.items():
            samples = timed_get(client, "/instruction/", args, options.repeat)
            statements.clear()
            event.listen(engine, "before_cursor_execute", count)
            client.get("/instruction/", query_string=args)
            event.remove(engine, "before_cursor_execute", count)
            results[n][label] = (*summary(samples), len(statements))
        samples = timed_get(client, f"/instruction/dossiers/{middle}", {"onglet": "tous", "tri": "demandeur"},
                            max(10, options.repeat // 2))
        results[n]["page dossier + précédent/suivant"] = (*summary(samples), 0)

    print(f"Queue benchmark on {sa.make_url(url).render_as_string(hide_password=True)} "
          f"({options.repeat} requests per view)")
    print(f"{'view':<36}{'N':>8}{'median ms':>12}{'p95 ms':>10}{'SQL':>6}")
    for n, rows in results.items():
        for label, (median, p95, sql) in rows.items():
            print(f"{label:<36}{n:>8,}{median:>12.1f}{p95:>10.1f}{sql or '':>6}")
    print("ratio N=10,000 / N=1,000 (median):")
    for label in results[1_000]:
        ratio = results[10_000][label][0] / results[1_000][label][0]
        print(f"  {label:<34}{ratio:>6.2f}")


if __name__ == "__main__":
    main()
