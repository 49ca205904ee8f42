"""Benchmark of the dashboard and of the statement of commitments on a generated data set.

Run from the project root, with PostgreSQL running, on a database filled by ``bench/generate.py``
(100,000 dossiers: ``bench/generate.py --database-url URL --fresh``):

    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/instruction_bench \\
        .venv/bin/python bench/bench_dashboard.py [--repeat 10]

The database is read, not changed (one staff account is added if missing). For each view it prints
the median and p95 (ms) of one GET as an instructor in the test client, the number of SQL
statements of one GET, and the ratio to the login page measured in the same run (compare ratios:
the machine is small and shared). Views: the dashboard of the demo campaign, the same for the
busiest département, the queue's CSV export with the dashboard's filters (what it must match), the
envelopes page and the statement (XLSX) of the busiest EPCI. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/instruction_bench"
EMAIL = "banc-tableau-de-bord@exemple.fr"
PASSWORD = "mot-de-passe-du-banc-d-essai"


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000


def timed_get(client, path: str, args: dict, repeat: int) -> list[float]:
    client.get(path, query_string=args)  # warm-up
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(path, query_string=args)
        _ = response.data  # a streamed body is read to its end
        samples.append(time.perf_counter() - start)
        assert response.status_code == 200, (path, response.status_code)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    options = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    os.environ.setdefault("INSTANCE_PATH", tempfile.mkdtemp(prefix="bench-dashboard-"))
    sys.path.insert(0, str(ROOT))

    from sqlalchemy import event, func, select

    from instruction import create_app
    from instruction.accounts.models import User
    from instruction.accounts.services import create_user
    from instruction.dossiers.models import Dossier
    from instruction.extensions import db
    from instruction.territory.models import Collectivite, Epci

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False,
                      "RATELIMIT_ENABLED": False,
                      # the export is measured as sent at once (above this, the worker builds it)
                      "EXPORT_INLINE_MAX_ROWS": 10**9})
    with app.app_context():
        if db.session.scalar(select(User).where(User.email == EMAIL)) is None:
            from instruction import clock

            create_user(email=EMAIL, full_name="Banc d'essai", password=PASSWORD, role="instructor",
                        collectivite=None, now=clock.now())
            db.session.commit()
        total = db.session.scalar(select(func.count()).select_from(Dossier))
        departement = db.session.scalar(
            select(Collectivite.departement_code).join(Dossier, Dossier.collectivite_id == Collectivite.id)
            .group_by(Collectivite.departement_code).order_by(func.count().desc()).limit(1))
        busiest_id = db.session.scalar(
            select(Collectivite.epci_id).join(Dossier, Dossier.collectivite_id == Collectivite.id)
            .where(Collectivite.epci_id.is_not(None))
            .group_by(Collectivite.epci_id).order_by(func.count().desc()).limit(1))
        busiest = db.session.scalar(select(Epci.siren).where(Epci.id == busiest_id))
        engine = db.engine
    print(f"{total:,} dossiers; busiest département {departement}, busiest EPCI {busiest}")

    client = app.test_client()
    response = client.post("/connexion", data={"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 302, response.status_code
    views = {
        "page de connexion (référence)": ("/connexion", {}),
        "tableau de bord, campagne de démonstration": ("/tableau-de-bord", {"campagne": "demo"}),
        f"tableau de bord, département {departement}": ("/tableau-de-bord",
                                                        {"campagne": "demo", "departement": departement}),
        "export CSV des mêmes dossiers (onglet Tous)": ("/instruction/export.csv",
                                                        {"onglet": "tous", "campagne": "demo"}),
        f"enveloppes de l'EPCI {busiest}": (f"/instruction/epci/{busiest}", {"campagne": "demo"}),
        f"état des engagements XLSX de l'EPCI {busiest}": (
            f"/instruction/epci/{busiest}/etat-des-engagements.xlsx", {"campagne": "demo"}),
    }
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    baseline = None
    print(f"{'vue':<55} {'médiane ms':>11} {'p95 ms':>9} {'× connexion':>12} {'requêtes SQL':>13}")
    for label, (path, args) in views.items():
        repeat = options.repeat if "export" not in label else max(3, options.repeat // 3)
        if path == "/connexion":
            anonymous = app.test_client()
            median, p95 = summary(timed_get(anonymous, path, args, options.repeat))
        else:
            median, p95 = summary(timed_get(client, path, args, repeat))
        statements.clear()
        event.listen(engine, "before_cursor_execute", count)
        client.get(path, query_string=args).get_data()
        event.remove(engine, "before_cursor_execute", count)
        baseline = baseline or median
        print(f"{label:<55} {median:>11.1f} {p95:>9.1f} {median / baseline:>11.1f}× {len(statements):>13}")


if __name__ == "__main__":
    main()
