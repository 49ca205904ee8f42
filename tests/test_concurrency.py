"""Grants racing for one envelope never exceed its cap, on PostgreSQL and on SQLite.

Each grant runs in its own thread with its own connection and transaction, all released at once
by a barrier, against a database of their own (committed data, not the per-test transaction).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from sqlalchemy import select

from instruction.dossiers import services
from instruction.dossiers.models import Dossier, Envelope
from instruction.extensions import db
from tests import factories
from tests.conftest import prepared_app, sibling_database_url

GRANTS = 12  # 12 × 4,000 € asked of a 30,000 € envelope: exactly 7 fit


@pytest.fixture(params=["postgresql", "sqlite"])
def committed_app(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'race.db'}" if request.param == "sqlite" else sibling_database_url("race")
    app = prepared_app(url, tmp_path)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def test_racing_grants_never_exceed_the_cap(committed_app):
    ids = []
    for _ in range(GRANTS):
        dossier = factories.dossier("eligible", aid=2)  # 10,000 € HT → 4,000 € each
        db.session.commit()
        ids.append(dossier.id)
    instructor_id = factories.staff("instructor").id
    db.session.remove()

    barrier = threading.Barrier(GRANTS)

    def grant(dossier_id: int) -> str:
        with committed_app.app_context():
            try:
                barrier.wait(timeout=30)
                dossier = db.session.get(Dossier, dossier_id)
                instructor = db.session.get(factories.User, instructor_id)
                services.grant(dossier, instructor, now=factories.NOW)
                db.session.commit()
                return "granted"
            except services.ActionConflict:
                db.session.rollback()
                return "refused"
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=GRANTS) as pool:
        outcomes = list(pool.map(grant, ids))

    envelope = db.session.scalar(select(Envelope).where(Envelope.scope == "epci:200000925"))
    granted = db.session.scalars(select(Dossier.granted_amount).where(Dossier.state == "granted")).all()
    assert outcomes.count("granted") == 7 and outcomes.count("refused") == 5
    assert envelope.consumed == sum(granted, Decimal("0.00")) == Decimal("28000.00")
    assert envelope.consumed <= envelope.cap_limit
