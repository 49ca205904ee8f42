"""Races with real concurrent sessions: grants for one envelope, two verbs on one dossier.

Each action runs in its own thread with its own connection and transaction, all released at once
by a barrier, against a database of their own (committed data, not the per-test transaction).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from sqlalchemy import select

from instruction.dossiers import services
from instruction.dossiers.models import AuditEvent, Dossier, Envelope
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


@pytest.fixture
def postgresql_app(tmp_path):
    app = prepared_app(sibling_database_url("race"), tmp_path)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def test_racing_grants_never_exceed_the_cap(committed_app):
    """On PostgreSQL the twelve transactions really overlap: the conditional UPDATE of the envelope
    is what keeps them under the cap (each waits for the row lock and re-checks its condition).

    On SQLite this proves less, and says so: every transaction takes the write lock at BEGIN
    IMMEDIATE (``instruction.db``), so the grants run one after the other and even a read-check-
    write in Python would pass. What it does prove there: concurrent threads with their own
    connections wait for the lock instead of failing ("database is locked"), each grant sees the
    previous one's commit, and the total stays exactly under the cap."""
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


def test_two_verbs_on_one_dossier_exactly_one_wins(postgresql_app):
    """Two instructors load the same received dossier, then one refuses it while the other declares
    it eligible. Both pass the in-memory checks (both read "received"); the conditional UPDATE
    (``WHERE state = 'received'``) lets exactly one through, the other gets 409."""
    dossier = factories.dossier("received", aid=2)
    first, second = factories.user("instructor"), factories.user("instructor")
    db.session.commit()
    dossier_id, actors = dossier.id, {"refuse": first.id, "declare_eligible": second.id}
    db.session.remove()
    loaded = threading.Barrier(2)

    def act(verb: str) -> int | str:
        with postgresql_app.app_context():
            try:
                target = db.session.get(Dossier, dossier_id)
                actor = db.session.get(factories.User, actors[verb])
                assert target.state == "received"
                _ = target.lines, target.campaign, target.collectivite  # everything read up front
                loaded.wait(timeout=30)  # both sessions now hold the dossier as "received"
                if verb == "refuse":
                    services.refuse(target, actor, "Hors du champ de l'aide", now=factories.NOW)
                else:
                    services.declare_eligible(target, actor, now=factories.NOW)
                db.session.commit()
                return "applied"
            except services.WorkflowError as error:
                db.session.rollback()
                return error.status
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = dict(zip(actors, pool.map(act, actors), strict=True))

    assert sorted(outcomes.values(), key=str) == [409, "applied"], outcomes
    winner = next(verb for verb, outcome in outcomes.items() if outcome == "applied")
    final = db.session.get(Dossier, dossier_id)
    assert final.state == {"refuse": "refused", "declare_eligible": "eligible"}[winner]
    events = db.session.scalars(select(AuditEvent.action).where(
        AuditEvent.dossier_id == dossier_id, AuditEvent.action.in_(actors))).all()
    assert events == [winner]
