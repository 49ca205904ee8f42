"""Two requests carrying the same form token at the same moment create one draft, on PostgreSQL.

Each request runs in its own thread, connection and transaction, released together by a barrier,
against a committed database of its own (like tests/test_concurrency.py).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from instruction.accounts.models import User
from instruction.dossiers.models import AuditEvent, Dossier
from instruction.extensions import db
from instruction.portal import services
from tests import factories
from tests.conftest import prepared_app, sibling_database_url

REQUESTS = 6


@pytest.fixture
def committed_app(tmp_path):
    app = prepared_app(sibling_database_url("portal_race"), tmp_path)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def test_racing_double_clicks_create_one_draft(committed_app):
    user_id = factories.user("applicant", collectivite=factories.commune("21001")).id
    db.session.commit()
    db.session.remove()
    barrier = threading.Barrier(REQUESTS)

    def click(_: int) -> tuple[int, bool]:
        with committed_app.app_context():
            try:
                user = db.session.get(User, user_id)
                campaign = factories.campaign()
                barrier.wait(timeout=30)
                dossier, created = services.create_draft_once(
                    campaign=campaign, aid_number=1, actor=user,
                    client_token="meme-jeton-de-formulaire", title="Double clic", now=factories.NOW)
                db.session.commit()
                return dossier.id, created
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=REQUESTS) as pool:
        outcomes = list(pool.map(click, range(REQUESTS)))

    assert len({dossier_id for dossier_id, _ in outcomes}) == 1
    assert [created for _, created in outcomes].count(True) == 1
    assert db.session.scalar(select(func.count()).select_from(Dossier)) == 1
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == 1
