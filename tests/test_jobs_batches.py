"""The nightly jobs work in batches (one INSERT of audit events, one of messages, one commit per
batch): across batch boundaries every draft is handled exactly once, the audit chain still
verifies, and a second run reads nothing, in a number of statements that does not grow with the
drafts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Text, cast, event, func, insert, select, update

from instruction.audit.services import verify_chain
from instruction.db import insert_many, table_of
from instruction.dossiers import jobs as dossier_jobs
from instruction.dossiers.models import AuditEvent, Dossier
from instruction.extensions import db
from instruction.notifications.jobs import committed_batches
from instruction.notifications.models import Delivery, OutboxMessage
from tests import factories
from tests.conftest import prepared_app, sibling_database_url


@pytest.fixture
def drafts(session, monkeypatch):
    """Seven drafts of the demo campaign over two collectivités (batches of three: 3 + 3 + 1)."""
    monkeypatch.setattr(dossier_jobs, "BATCH", 3)
    epci, commune = factories.epci("200000925"), factories.commune("21001")
    made = [factories.dossier("draft", aid=2, collectivite=epci) for _ in range(4)]
    made += [factories.dossier("draft", aid=1, collectivite=commune) for _ in range(3)]
    agents = {epci.id: factories.applicant_of(epci).email, commune.id: factories.applicant_of(commune).email}
    session.commit()
    return made, agents


def deadline_of_demo(session):
    return session.get(Dossier, session.scalar(select(Dossier.id).limit(1))).campaign.deadline_at


def count(statement) -> int:
    return factories.db.session.scalar(statement)


def statements_of(call) -> int:
    seen = []
    listener = lambda *args: seen.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        call()
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    return len(seen)


def test_the_deadline_job_expires_every_draft_once_across_batches(session, drafts):
    made, agents = drafts
    deadline = deadline_of_demo(session)
    assert dossier_jobs.expire_drafts(deadline + timedelta(minutes=1)) == "7 brouillon(s) clos à la date limite"
    for dossier in made:
        session.refresh(dossier)
        assert dossier.state == "expired" and dossier.closed_at == deadline + timedelta(minutes=1)
        [expiry] = [e for e in dossier.events if e.action == "expire"]
        assert (expiry.from_state, expiry.to_state, expiry.actor_id) == ("draft", "expired", None)
        [notice] = session.scalars(select(OutboxMessage).where(
            OutboxMessage.kind == "expire", OutboxMessage.dossier_id == dossier.id)).all()
        assert notice.key == f"dossier:{dossier.id}:event:{expiry.id}"
        assert [d.email for d in notice.deliveries] == [agents[dossier.collectivite_id]]
        assert notice.context["reference"] == dossier.reference and notice.context["state"] == "expired"
        # Written at the job's instant, not the wall clock's: due at once for a dispatch at that instant.
        assert notice.created_at == deadline + timedelta(minutes=1)
        assert [d.next_attempt_at for d in notice.deliveries] == [deadline + timedelta(minutes=1)]
    assert verify_chain().ok  # the batch INSERT chained its rows like the ORM does
    events = count(select(func.count(AuditEvent.id)))
    assert dossier_jobs.expire_drafts(deadline + timedelta(hours=2)) == "0 brouillon(s) clos à la date limite"
    assert count(select(func.count(AuditEvent.id))) == events


def test_reminders_go_once_to_every_draft_across_batches(session, drafts):
    made, agents = drafts
    eve = deadline_of_demo(session) - timedelta(hours=20)  # the J-1 window
    dossier_jobs.send_reminders(eve)
    keys = set(session.scalars(select(OutboxMessage.key).where(OutboxMessage.kind == "reminder_deadline")))
    assert keys == {f"reminder:deadline:J-1:dossier:{d.id}" for d in made}
    assert set(session.scalars(select(OutboxMessage.created_at).where(
        OutboxMessage.kind == "reminder_deadline"))) == {eve}  # the job's instant
    assert set(session.scalars(select(Delivery.next_attempt_at).join(OutboxMessage).where(
        OutboxMessage.kind == "reminder_deadline"))) == {eve}
    assert count(select(func.count(Delivery.id)).join(OutboxMessage).where(
        OutboxMessage.kind == "reminder_deadline")) == 7
    first = statements_of(lambda: dossier_jobs.send_reminders(eve + timedelta(minutes=5)))
    assert len(keys) == count(select(func.count(OutboxMessage.id)).where(OutboxMessage.kind == "reminder_deadline"))
    # Nothing left to send: a handful of statements, whatever the number of drafts.
    more = [factories.dossier("draft", aid=2, collectivite=made[0].collectivite) for _ in range(5)]
    session.commit()
    dossier_jobs.send_reminders(eve + timedelta(minutes=10))
    again = statements_of(lambda: dossier_jobs.send_reminders(eve + timedelta(minutes=15)))
    assert again == first <= 8
    assert count(select(func.count(OutboxMessage.id)).where(OutboxMessage.kind == "reminder_deadline")) == 12
    assert all(d.id for d in more)



def test_each_batch_is_committed_before_the_next_is_read(tmp_path):
    """What a job did with a batch is seen by another connection as soon as the next batch is
    read: a run stopped midway keeps it (7 drafts in batches of 3, counted from outside at each
    read). On a database of its own: the tests' session never really commits."""
    app = prepared_app(sibling_database_url("batches"), tmp_path)
    with app.app_context():
        ids = sorted(factories.dossier("draft", aid=2).id for _ in range(7))
        db.session.commit()
        seen_from_outside = []

        def read(after: int) -> list[int]:
            with db.engine.connect() as other:
                seen_from_outside.append(other.scalar(
                    select(func.count()).select_from(Dossier).where(Dossier.title == "lu")))
            return [i for i in ids if i > after][:3]

        for batch in committed_batches(read, id_of=int):
            db.session.execute(update(Dossier).where(Dossier.id.in_(batch)).values(title="lu"))
        db.session.remove()
        db.engine.dispose()
    assert seen_from_outside == [0, 3, 6, 7]


def test_insert_many_writes_what_the_values_list_writes(session):
    """``db.insert_many`` (on PostgreSQL one JSON document read back in order) writes the rows, the
    model's defaults, the JSON text and the id order of SQLAlchemy's VALUES list."""
    outbox, deliveries = table_of(OutboxMessage), table_of(Delivery)
    connection = session.connection()
    user = factories.user("applicant")

    def rows(tag: str) -> list[dict]:
        return [{"key": f"many-{tag}-{i}", "kind": "submit", "dossier_id": None,
                 "context": {"référence": f"n°{i}", "liste": [i, "deux", None]}, "created_at": factories.NOW}
                for i in range(3)]

    statement = insert(outbox).returning(outbox.c.id, sort_by_parameter_order=True)
    by_values = connection.execute(statement, rows("values")).scalars().all()
    by_many = insert_many(connection, statement, rows("many")).scalars().all()
    assert by_many == sorted(by_many) and by_many[0] > by_values[-1]
    written = {row.key: row for row in connection.execute(select(
        outbox.c.key, outbox.c.context, cast(outbox.c.context, Text).label("text"), outbox.c.dispatched_at,
        outbox.c.created_at).where(outbox.c.key.like("many-%")))}
    for i in range(3):
        values, many = written[f"many-values-{i}"], written[f"many-many-{i}"]
        assert (many.text, many.context, many.created_at) == (values.text, values.context, values.created_at)
        assert many.dispatched_at is not None  # the model's default (clock_now), as for the VALUES list
    insert_many(connection, insert(deliveries), [{"message_id": message_id, "user_id": user.id, "email": user.email,
                                                 "next_attempt_at": factories.NOW} for message_id in by_many])
    assert connection.execute(select(deliveries.c.message_id, deliveries.c.status, deliveries.c.attempts)
                              .where(deliveries.c.message_id.in_(by_many)).order_by(deliveries.c.id)).all() == [
        (message_id, "pending", 0) for message_id in by_many]
