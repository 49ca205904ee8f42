"""The periodic jobs with a frozen clock: deadline, reminders, digest, and their run records.

They run in the per-test transaction (their commits are savepoints); tests/test_worker.py runs
them through a real worker, Redis and an SMTP server.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from instruction.dossiers import jobs as dossier_jobs
from instruction.dossiers import services
from instruction.dossiers.models import AuditEvent
from instruction.notifications import jobs
from instruction.notifications.calendar import easter_sunday, french_public_holidays, is_working_day
from instruction.notifications.models import Delivery, JobRun, OutboxMessage
from instruction.rules.parameters import PARIS
from instruction.teamwork import digest as digests
from tests import factories
from tests.factories import NOW


def paris(*args) -> datetime:
    return datetime(*args, tzinfo=PARIS).astimezone(UTC)


DEMO_DEADLINE = paris(2027, 7, 1)  # the demo campaign: submissions until 30 June 2027 included
PAIR_DEADLINE = paris(2022, 1, 1)  # the 2021 campaign: until 31 December 2021 included
IN_2021 = datetime(2021, 6, 1, 10, 0, tzinfo=UTC)


def messages(kind: str, dossier=None) -> list[OutboxMessage]:
    query = select(OutboxMessage).where(OutboxMessage.kind == kind)
    if dossier is not None:
        query = query.where(OutboxMessage.dossier_id == dossier.id)
    return list(factories.db.session.scalars(query.order_by(OutboxMessage.id)))


def recipients(message: OutboxMessage) -> set[str]:
    return {d.email for d in message.deliveries}


# --- deadline ----------------------------------------------------------------------------------


def test_deadline_expires_exactly_the_drafts_of_closed_campaigns(session):
    old_draft = factories.dossier("draft", campaign_code="pair-2021", now=IN_2021)
    old_submitted = factories.dossier("received", campaign_code="pair-2021", now=IN_2021)
    open_draft = factories.dossier("draft", campaign_code="demo")
    applicant = factories.applicant_of(old_draft.collectivite)
    session.commit()

    assert dossier_jobs.expire_drafts(PAIR_DEADLINE - timedelta(microseconds=1)) == "0 brouillon(s) clos à la date limite"
    assert old_draft.state == "draft"

    assert dossier_jobs.expire_drafts(PAIR_DEADLINE) == "1 brouillon(s) clos à la date limite"
    session.refresh(old_draft), session.refresh(old_submitted), session.refresh(open_draft)
    assert (old_draft.state, old_submitted.state, open_draft.state) == ("expired", "received", "draft")
    event = old_draft.events[-1]
    assert (event.action, event.actor_id, event.from_state, event.to_state, event.at) == \
        ("expire", None, "draft", "expired", PAIR_DEADLINE)
    [notice] = messages("expire", old_draft)
    assert recipients(notice) == {applicant.email}

    events = session.scalar(select(func.count(AuditEvent.id)))
    outbox = session.scalar(select(func.count(OutboxMessage.id)))
    assert dossier_jobs.expire_drafts(PAIR_DEADLINE + timedelta(hours=1)) == "0 brouillon(s) clos à la date limite"
    assert session.scalar(select(func.count(AuditEvent.id))) == events  # a second run changes nothing
    assert session.scalar(select(func.count(OutboxMessage.id))) == outbox

    assert dossier_jobs.expire_drafts(DEMO_DEADLINE) == "1 brouillon(s) clos à la date limite"
    session.refresh(open_draft)
    assert open_draft.state == "expired"


# --- deadline reminders ------------------------------------------------------------------------


@pytest.mark.parametrize(("now", "expected"), [
    (paris(2027, 5, 31, 23, 59), None),
    (paris(2027, 6, 1), 30),
    (paris(2027, 6, 23, 23, 59), 30),
    (paris(2027, 6, 24), 7),
    (paris(2027, 6, 30), 1),
    (paris(2027, 6, 30, 23, 59, 59), 1),
    (paris(2027, 7, 1), None),
])
def test_the_due_reminder_is_the_latest_window_opened(now, expected):
    assert dossier_jobs.due_reminder(DEMO_DEADLINE, now, (30, 7, 1)) == expected


def test_deadline_reminders_go_out_once_at_j30_j7_j1(session):
    draft = factories.dossier("draft")
    factories.dossier("received")  # submitted: no reminder
    applicant = factories.applicant_of(draft.collectivite)
    session.commit()

    sent = []
    for now in (paris(2027, 5, 31, 12), paris(2027, 6, 1, 9), paris(2027, 6, 1, 10), paris(2027, 6, 20),
                paris(2027, 6, 24, 9), paris(2027, 6, 25), paris(2027, 6, 30, 9), paris(2027, 6, 30, 18),
                DEMO_DEADLINE, DEMO_DEADLINE + timedelta(days=1)):
        dossier_jobs.send_reminders(now)
        sent.append(len(messages("reminder_deadline")))

    assert sent == [0, 1, 1, 1, 2, 2, 3, 3, 3, 3]
    reminders = messages("reminder_deadline")
    assert [m.key for m in reminders] == [f"reminder:deadline:J-{d}:dossier:{draft.id}" for d in (30, 7, 1)]
    assert all(m.dossier_id == draft.id and recipients(m) == {applicant.email} for m in reminders)
    assert reminders[0].context["last_day"] == "30 juin 2027"


def test_a_draft_created_on_the_last_day_gets_only_the_j1_reminder(session):
    draft = factories.dossier("draft", now=paris(2027, 6, 30, 9))
    session.commit()
    dossier_jobs.send_reminders(paris(2027, 6, 30, 10))
    dossier_jobs.send_reminders(paris(2027, 6, 30, 11))
    assert [m.key for m in messages("reminder_deadline")] == [f"reminder:deadline:J-1:dossier:{draft.id}"]


def test_reminder_days_come_from_the_configuration(session, app, monkeypatch):
    monkeypatch.setitem(app.config, "REMINDER_DAYS", (3,))
    draft = factories.dossier("draft")
    session.commit()
    dossier_jobs.send_reminders(paris(2027, 6, 27, 12))
    dossier_jobs.send_reminders(paris(2027, 6, 30, 12))
    assert [m.key for m in messages("reminder_deadline")] == [f"reminder:deadline:J-3:dossier:{draft.id}"]


# --- documents reminders -----------------------------------------------------------------------


def test_documents_reminder_after_15_days_without_answer_once_per_request(session):
    dossier = factories.dossier("incomplete")  # documents requested at NOW
    applicant = factories.applicant_of(dossier.collectivite)
    first_request = dossier.events[-1]
    session.commit()

    dossier_jobs.send_reminders(NOW + timedelta(days=15) - timedelta(seconds=1))
    assert messages("reminder_documents") == []
    dossier_jobs.send_reminders(NOW + timedelta(days=15))
    dossier_jobs.send_reminders(NOW + timedelta(days=16))
    [reminder] = messages("reminder_documents")
    assert reminder.key == f"reminder:documents:event:{first_request.id}"
    assert recipients(reminder) == {applicant.email}
    assert reminder.context["reason"] == "Merci de joindre la facture signée."

    later = NOW + timedelta(days=20)
    services.resubmit(dossier, applicant, "Voici la facture.", now=later)
    dossier_jobs.send_reminders(later + timedelta(days=30))  # answered: no reminder
    assert len(messages("reminder_documents")) == 1
    services.request_documents(dossier, factories.staff("instructor"), "Et le devis.", now=later)
    session.commit()
    dossier_jobs.send_reminders(later + timedelta(days=15))
    assert len(messages("reminder_documents")) == 2


# --- digest ------------------------------------------------------------------------------------


MONDAY = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
TUESDAY_8AM = paris(2026, 12, 1, 8)


def digests_of(user) -> list[OutboxMessage]:
    return [m for m in messages("digest") if recipients(m) == {user.email}]


def test_digest_new_dossiers_and_dossiers_waiting_once_a_day(session):
    mine, other = factories.user("instructor"), factories.user("instructor")
    assigned = factories.dossier("received", now=MONDAY)
    services.assign(assigned, mine, now=MONDAY)
    unassigned = factories.dossier("received", now=MONDAY + timedelta(hours=2))
    session.commit()

    assert digests.send_digests(TUESDAY_8AM) == "2 synthèse(s) envoyée(s)"
    assert digests.send_digests(TUESDAY_8AM + timedelta(hours=3)) == "0 synthèse(s) envoyée(s)"
    [digest] = digests_of(mine)
    assert digest.key == f"digest:{mine.id}:2026-12-01"
    assert [d["reference"] for d in digest.context["new"]] == [assigned.reference, unassigned.reference]
    assert [d["reference"] for d in digest.context["waiting"]] == [assigned.reference]
    assert digests_of(other)[0].context["waiting"] == []

    # Wednesday: nothing new; only ``mine`` still has a dossier waiting.
    digests.send_digests(paris(2026, 12, 2, 8))
    assert len(digests_of(mine)) == 2 and len(digests_of(other)) == 1
    assert digests_of(mine)[1].context["new"] == []


def test_first_digest_of_the_week_covers_the_weekend(session):
    instructor = factories.user("instructor")
    saturday = factories.dossier("received", now=NOW)  # Saturday 28 November 2026
    session.commit()
    digests.send_digests(paris(2026, 11, 30, 8))  # Monday
    [digest] = digests_of(instructor)
    assert [d["reference"] for d in digest.context["new"]] == [saturday.reference]


def test_no_digest_on_weekends_public_holidays_or_with_nothing_to_say(session):
    instructor = factories.user("instructor")
    session.commit()
    assert digests.send_digests(TUESDAY_8AM) == "0 synthèse(s) envoyée(s)"  # nothing to say
    factories.dossier("received", now=paris(2026, 11, 10, 12))
    session.commit()
    assert "jour non ouvré" in digests.send_digests(paris(2026, 11, 11, 8))  # Armistice
    assert "jour non ouvré" in digests.send_digests(paris(2026, 12, 5, 8))  # Saturday
    assert digests_of(instructor) == []


def test_digest_lists_envelopes_nearly_exhausted(session):
    instructor = factories.user("instructor")
    big = [{"category": "equipement", "label": "Serveurs", "amount_ht": "67500.00"}]  # 40 % = 27,000 €
    factories.dossier("granted", lines=big, now=paris(2026, 10, 1, 12))
    session.commit()
    digests.send_digests(TUESDAY_8AM)
    [digest] = digests_of(instructor)
    assert digest.context["new"] == [] and digest.context["waiting"] == []
    [envelope] = digest.context["envelopes"]
    assert envelope["aid"] == 2 and envelope["percent"] == 90
    assert envelope["consumed"] == "27\u00a0000,00\u00a0€" and "Plaine Dijonnaise" in envelope["scope"]


# --- working days ------------------------------------------------------------------------------


@pytest.mark.parametrize(("year", "easter"), [
    (2000, date(2000, 4, 23)), (2019, date(2019, 4, 21)), (2024, date(2024, 3, 31)),
    (2025, date(2025, 4, 20)), (2026, date(2026, 4, 5)), (2027, date(2027, 3, 28)),
    (2038, date(2038, 4, 25)),
])
def test_easter_sunday(year, easter):
    assert easter_sunday(year) == easter


def test_french_public_holidays_2026():
    assert sorted(french_public_holidays(2026)) == [
        date(2026, 1, 1), date(2026, 4, 6), date(2026, 5, 1), date(2026, 5, 8), date(2026, 5, 14),
        date(2026, 5, 25), date(2026, 7, 14), date(2026, 8, 15), date(2026, 11, 1), date(2026, 11, 11),
        date(2026, 12, 25),
    ]


@pytest.mark.parametrize(("day", "working"), [
    (date(2026, 12, 1), True),  # Tuesday
    (date(2026, 12, 4), True),  # Friday
    (date(2026, 12, 5), False),  # Saturday
    (date(2026, 12, 6), False),  # Sunday
    (date(2026, 5, 14), False),  # Ascension (Thursday)
    (date(2026, 5, 25), False),  # Whit Monday
    (date(2027, 3, 29), False),  # Easter Monday
    (date(2026, 12, 24), True),  # Christmas Eve is worked
    (date(2026, 12, 26), False),  # Saturday (Saint-Étienne is a holiday only in Alsace-Moselle)
])
def test_working_days(day, working):
    assert is_working_day(day) is working


# --- run records -------------------------------------------------------------------------------


def test_each_run_is_recorded(session, monkeypatch):
    summary = jobs.run_job("deadline", now=PAIR_DEADLINE)
    run = session.get(JobRun, "deadline")
    assert (run.status, run.summary) == ("ok", summary)
    assert run.started_at <= run.finished_at

    def broken(now):
        raise RuntimeError("la base ne répond pas")

    monkeypatch.setitem(jobs.JOBS, "deadline", broken)
    with pytest.raises(RuntimeError):
        jobs.run_job("deadline", now=PAIR_DEADLINE)
    session.refresh(run)
    assert (run.status, run.summary) == ("error", "RuntimeError: la base ne répond pas")


def test_dispatch_delivers_without_a_broker_when_asked(session, app, monkeypatch):
    """``run-jobs --deliver``: everything due is sent in-process (here to a closed port)."""
    monkeypatch.setitem(app.config, "SMTP_PORT", 9)
    factories.dossier("received")
    session.commit()
    later = NOW.replace(year=2030)
    assert jobs.dispatch_pending(later, deliver=True) == "1 message(s) traité(s), 0 courriel(s) envoyé(s)"
    [row] = session.scalars(select(Delivery)).all()
    assert row.attempts == 1 and row.last_error
