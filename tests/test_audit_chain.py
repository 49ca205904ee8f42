"""The tamper-evident audit trail: a hash chain over ``audit_event``, append-only, verified.

Tampering is done the way an intruder with database access would: with the append-only triggers
bypassed (``session_replication_role = replica``, superuser only), inside the test's transaction.
"""

from __future__ import annotations

import hashlib
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from sqlalchemy import select, text

from instruction.audit.chain import GENESIS, AppendOnly
from instruction.audit.models import AuditVerification
from instruction.audit.services import verify_and_record, verify_chain
from instruction.dossiers.models import AuditEvent
from instruction.extensions import db
from instruction.rules.formatting import format_integer
from tests import factories
from tests.conftest import make_test_app, prepared_app, sibling_database_url


def _events(session) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def _bypass_triggers(session) -> None:
    session.execute(text("SET LOCAL session_replication_role = replica"))


def test_each_event_carries_the_hash_of_the_previous_one(session):
    dossier = factories.dossier("received")
    session.flush()
    events = _events(session)
    assert [e.action for e in events][-2:] == ["create", "submit"]
    for before, after in zip(events, events[1:], strict=False):
        assert after.prev_hash == before.hash
    submit = events[-1]
    # The canonical serialisation, written out by hand: sorted keys, no spaces, NULLs left out.
    expected = (
        f'{{"action":"submit","actor_id":{submit.actor_id},"at":"2026-11-28T10:00:00.000000+00:00",'
        f'"dossier_id":{dossier.id},"from_state":"draft","prev_hash":"{events[-2].hash}",'
        f'"to_state":"received"}}')
    assert submit.hash == hashlib.sha256(expected.encode()).hexdigest()


def test_the_first_event_follows_the_genesis(session):
    session.execute(text("SET LOCAL session_replication_role = replica"))
    session.execute(text("DELETE FROM audit_event"))  # an empty journal, in this test only
    session.execute(text("SET LOCAL session_replication_role = origin"))
    factories.dossier("draft")
    session.flush()
    assert _events(session)[0].prev_hash == GENESIS
    assert verify_chain().ok


def test_verification_names_the_altered_event(session):
    factories.dossier("eligible")
    session.flush()
    events = _events(session)
    target = events[-2]
    assert verify_chain().ok
    _bypass_triggers(session)
    session.execute(text("UPDATE audit_event SET reason = 'Autre motif' WHERE id = :id"), {"id": target.id})
    result = verify_chain()
    assert not result.ok
    assert result.first_broken_id == target.id
    assert result.message == (f"Chaîne rompue à l'événement n° {target.id} : son contenu a été modifié "
                              "après son enregistrement.")


def test_a_recomputed_hash_is_caught_by_the_next_link(session):
    """An intruder who changes a row and recomputes its hash breaks the link of the next row."""
    factories.dossier("eligible")
    session.flush()
    events = _events(session)
    target, following = events[-2], events[-1]
    _bypass_triggers(session)
    session.execute(text("UPDATE audit_event SET reason = 'x', hash = :h WHERE id = :id"),
                    {"h": "f" * 64, "id": target.id})
    result = verify_chain()
    assert not result.ok and result.first_broken_id == target.id  # its own hash no longer matches
    from instruction.audit.chain import row_hash

    row = session.execute(select(AuditEvent.__table__).where(AuditEvent.id == target.id)).mappings().one()
    session.execute(text("UPDATE audit_event SET hash = :h WHERE id = :id"),
                    {"h": row_hash(row), "id": target.id})
    result = verify_chain()
    assert not result.ok and result.first_broken_id == following.id
    assert f"l'événement n° {following.id} : il ne suit pas l'événement n° {target.id}" in result.message


def test_verification_names_the_event_after_a_deleted_one(session):
    factories.dossier("eligible")
    session.flush()
    events = _events(session)
    removed, following = events[-2], events[-1]
    _bypass_triggers(session)
    session.execute(text("DELETE FROM audit_event WHERE id = :id"), {"id": removed.id})
    result = verify_chain()
    assert not result.ok and result.first_broken_id == following.id
    assert "supprimé, inséré ou déplacé" in result.message


def test_a_removed_tail_is_caught_by_the_last_verification(session):
    """Removing the last rows leaves a valid shorter chain: the stored tip of the last good
    verification tells."""
    factories.dossier("eligible")
    session.flush()
    first = verify_and_record(factories.NOW)
    assert first.ok and first.last_event_id == _events(session)[-1].id
    _bypass_triggers(session)
    session.execute(text("DELETE FROM audit_event WHERE id = :id"), {"id": first.last_event_id})
    second = verify_and_record(factories.NOW)
    assert not second.ok and second.first_broken_id == first.last_event_id
    assert "28 novembre 2026" in second.message and "ont disparu" in second.message
    stored = session.scalars(select(AuditVerification).order_by(AuditVerification.id.desc())).first()
    assert (stored.ok, stored.first_broken_id) == (False, first.last_event_id)


@pytest.mark.parametrize("statement", ["UPDATE audit_event SET reason = 'x' WHERE id = :id",
                                       "DELETE FROM audit_event WHERE id = :id"])
def test_postgresql_refuses_update_and_delete(session, statement):
    factories.dossier("received")
    session.flush()
    event_id = _events(session)[-1].id
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), session.begin_nested():
        session.execute(text(statement), {"id": event_id})


@pytest.mark.parametrize("change", ["update", "delete"])
def test_the_application_has_no_update_nor_delete_path(session, change):
    dossier = factories.dossier("received")
    session.flush()
    event = dossier.events[-1]
    if change == "update":
        event.reason = "réécrit"
    else:
        session.delete(event)
    with pytest.raises(AppendOnly):
        session.flush()


def test_sqlite_refuses_update_and_delete(tmp_path):
    from flask_migrate import upgrade

    app = make_test_app(f"sqlite:///{tmp_path / 'audit.db'}", tmp_path)
    with app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA defer_foreign_keys=ON")  # never committed
            connection.execute(text(
                "INSERT INTO audit_event (id, dossier_id, action, to_state, at, prev_hash, hash) "
                "VALUES (1, 1, 'create', 'draft', '2026-11-28 10:00:00.000000', :g, :h)"),
                {"g": GENESIS, "h": "a" * 64})
            for statement in ("UPDATE audit_event SET reason = 'x'", "DELETE FROM audit_event"):
                with pytest.raises(sa.exc.DBAPIError, match="append-only"):
                    connection.execute(text(statement))
        db.engine.dispose()


# --- concurrent appends --------------------------------------------------------------------------

WRITERS, EACH = 6, 5


@pytest.fixture(params=["postgresql", "sqlite"])
def committed_app(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'audit.db'}" if request.param == "sqlite" else sibling_database_url("audit")
    app = prepared_app(url, tmp_path)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def test_concurrent_appends_make_one_chain(committed_app):
    """Writers in their own connections, released together, never chain onto the same tip."""
    dossier = factories.dossier("received")
    db.session.commit()
    dossier_id, before = dossier.id, db.session.scalar(select(sa.func.count(AuditEvent.id)))
    db.session.remove()
    barrier = threading.Barrier(WRITERS)

    def append(writer: int) -> None:
        with committed_app.app_context():
            try:
                barrier.wait(timeout=30)
                for i in range(EACH):
                    db.session.add(AuditEvent(dossier_id=dossier_id, action="assign", from_state="received",
                                              to_state="received", at=factories.NOW,
                                              reason=f"écrivain {writer}, événement {i}"))
                    db.session.commit()
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        list(pool.map(append, range(WRITERS)))

    result = verify_chain()
    assert result.ok, result.message
    assert result.events_checked == before + WRITERS * EACH


# --- the command and the admin home ---------------------------------------------------------------


def test_the_command_verifies_and_the_admin_home_shows_it(app, client, session):
    factories.dossier("received")
    session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    count = session.scalar(select(sa.func.count(AuditEvent.id)))
    assert result.output.strip() == f"Journal intègre : {format_integer(count)} événements vérifiés."

    factories.staff_logged_in(client, session, "admin")
    page = client.get("/").get_data(as_text=True)
    assert "Intégrité du journal d'audit" in page and "Journal intègre" in page

    _bypass_triggers(session)
    last = _events(session)[-1]
    session.execute(text("UPDATE audit_event SET to_state = 'granted' WHERE id = :id"), {"id": last.id})
    session.execute(text("SET LOCAL session_replication_role = origin"))
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert f"événement n° {last.id}" in result.output
    page = client.get("/").get_data(as_text=True)
    assert f"Chaîne rompue à l&#39;événement n° {last.id}" in page


def test_the_serialisation_leaves_out_nulls_so_new_columns_keep_past_rows_valid():
    from instruction.audit.chain import canonical

    assert canonical({"id": 3, "hash": "h", "action": "grant", "subject": None, "at": None}) == b'{"action":"grant"}'
    assert json.loads(canonical({"before": {"b": 1, "a": [1, 2]}})) == {"before": {"a": [1, 2], "b": 1}}


def test_an_admin_action_with_its_before_and_after_verifies_once_read_back(session):
    """The columns added for admin actions (subject, before/after as JSON) are in the chain, and
    what the database gives back serialises as what was sealed."""
    admin = factories.user("admin")
    session.flush()
    event = AuditEvent(actor=admin, action="change_role", subject_kind="user", subject_id=admin.id,
                       subject_label="Agent « test »", before={"role": "instructor", "zones": ["21", "25"]},
                       after={"role": "admin", "note": "é\u00a0€", "n": 3, "ok": True, "none": None})
    session.add(event)
    session.flush()
    sealed = event.hash
    session.expire_all()
    row = session.execute(select(AuditEvent.__table__).where(AuditEvent.id == event.id)).mappings().one()
    from instruction.audit.chain import canonical, row_hash

    assert row_hash(row) == sealed
    assert b'"after":{"n":3,"none":null,"note":"\xc3\xa9\xc2\xa0\xe2\x82\xac","ok":true,"role":"admin"}' in canonical(row)
    assert verify_chain().ok
    _bypass_triggers(session)
    session.execute(text("""UPDATE audit_event SET "after" = '{"role": "instructor"}' WHERE id = :id"""),
                    {"id": event.id})
    assert verify_chain().first_broken_id == event.id
