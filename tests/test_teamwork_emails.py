"""E-mails of the thread and of the team, counted by a real SMTP sink: staff e-mails grouped (at
most one per dossier and hour, or in the digest, as each instructor chooses), one e-mail per staff
message to each approved agent, nobody e-mailed about their own message; completion and
withdrawal told to the assignee and followers (or the instructors), the applicant's receipt of a
withdrawal; the assignee told of an assignment."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from instruction.dossiers import services as dossiers
from instruction.notifications import jobs
from instruction.notifications.models import OutboxMessage
from instruction.teamwork import digest as digests
from instruction.teamwork import services as team
from tests import factories
from tests.factories import NOW
from tests.test_notifications_delivery import parts, sink  # noqa: F401  (the SMTP sink fixture)

T0 = NOW + timedelta(hours=1)  # 28 novembre 2026, 12:00 in Paris, after the submission
MAX = 10 * 1024 * 1024


def subject(mail) -> str:
    """The subject without spaces (a long non-ASCII subject comes back folded)."""
    return "".join(str(mail["Subject"]).split())


def about_messages(smtp, address=None):
    return [m for m in smtp.messages if "message" in m["Subject"] and (address is None or m["To"] == address)]


def deliver(at):
    factories.db.session.commit()
    jobs.dispatch_pending(at, deliver=True)


def world(session):
    dossier = factories.dossier("received", aid=2)
    agent = factories.applicant_of(dossier.collectivite)
    colleague = factories.user("applicant", collectivite=dossier.collectivite, full_name="Paul Roy")
    waiting = factories.user("applicant", collectivite=dossier.collectivite, approved=False)
    grouped = factories.user("instructor", full_name="Inès Moreau")  # the default: grouped
    digest = factories.user("instructor", full_name="Luc Petit")
    bystander = factories.user("instructor", full_name="Marc Blanc")
    team.set_preference(digest, "digest")
    dossier.assigned_to = grouped
    team.follow(dossier, digest, now=NOW)
    session.commit()
    deliver(NOW)  # the submission's e-mails, out of the way
    return dossier, agent, colleague, waiting, grouped, digest, bystander


def test_thirty_applicant_messages_within_an_hour_send_one_e_mail_to_a_grouping_instructor(session, sink):  # noqa: F811
    dossier, agent, colleague, _, grouped, digest, bystander = world(session)
    for i in range(30):
        team.post_message(dossier, agent, f"Message n°{i + 1}", [], max_bytes=MAX, now=T0 + timedelta(minutes=i))
    deliver(T0 + timedelta(minutes=30))

    [mail] = about_messages(sink)
    assert mail["To"] == grouped.email
    assert subject(mail) == "".join(f"Dossier {dossier.reference} : message du demandeur".split())
    body = parts(mail)["text/plain"]
    assert "a écrit 30 messages sur le dossier" in body
    assert "« Message n°1 »" in body and "« Message n°30 »" in body
    assert f"{agent.full_name}, le 28 novembre 2026 à 12:29" in body
    # Nobody of the applicant's side, the digest reader or a bystander got anything.
    for person in (agent, colleague, digest, bystander):
        assert about_messages(sink, person.email) == []

    # The 31st, 5 minutes after the e-mail went: it waits for the hour to pass.
    team.post_message(dossier, agent, "Message n°31", [], max_bytes=MAX, now=T0 + timedelta(minutes=35))
    team.post_message(dossier, agent, "Message n°32", [], max_bytes=MAX, now=T0 + timedelta(minutes=50))
    deliver(T0 + timedelta(minutes=89))
    assert len(about_messages(sink)) == 1
    deliver(T0 + timedelta(minutes=90))  # an hour after the first e-mail was sent
    assert len(about_messages(sink)) == 2
    second = parts(about_messages(sink)[1])["text/plain"]
    assert "a écrit 2 messages" in second and "« Message n°31 »" in second and "n°30" not in second


def test_an_instructor_who_chose_the_digest_finds_the_messages_there(session, sink):  # noqa: F811
    dossier, agent, _, _, grouped, digest, bystander = world(session)
    team.set_preference(grouped, "digest")
    for i in range(3):
        team.post_message(dossier, agent, f"Question {i}", [], max_bytes=MAX, now=T0 + timedelta(minutes=i))
    deliver(T0 + timedelta(hours=3))
    assert about_messages(sink) == []

    monday = NOW + timedelta(days=2)  # Monday 30 November 2026, 11:00 in Paris
    digests.send_digests(monday)
    rows = {m.deliveries[0].user_id: m.context for m in session.scalars(
        select(OutboxMessage).where(OutboxMessage.kind == "digest"))}
    expected = [{"id": dossier.id, "reference": dossier.reference, "title": "Projet",
                 "collectivite": "CC de la Plaine Dijonnaise", "count": 3}]
    assert rows[grouped.id]["messages"] == expected and rows[digest.id]["messages"] == expected
    # A bystander (the dossier has an assignee and a follower) is told nothing of them.
    assert rows.get(bystander.id, {}).get("messages", []) == []


def test_each_staff_message_reaches_each_approved_agent_once_and_never_its_author(session, sink):  # noqa: F811
    dossier, agent, colleague, waiting, grouped, digest, _ = world(session)
    team.follow(dossier, grouped, now=NOW)  # the author follows the dossier: still not told
    for i in range(3):
        team.post_message(dossier, grouped, f"Réponse {i}", [], max_bytes=MAX, now=T0 + timedelta(minutes=i))
    deliver(T0 + timedelta(minutes=5))
    mails = about_messages(sink)
    assert sorted(m["To"] for m in mails) == sorted([agent.email] * 3 + [colleague.email] * 3)
    assert all(subject(m) == "".join(f"Dossier {dossier.reference} : nouveau message de la Région".split())
               for m in mails)
    assert about_messages(sink, waiting.email) == [] and about_messages(sink, grouped.email) == []
    assert about_messages(sink, digest.email) == []
    body = parts(mails[0])["text/plain"]
    assert "« Réponse 0 »" in body and grouped.full_name not in body  # the Region speaks, not a person


def test_an_applicant_is_not_told_of_their_own_message_nor_of_a_colleague_s(session, sink):  # noqa: F811
    dossier, agent, colleague, *_ = world(session)
    team.post_message(dossier, agent, "Bonjour", [], max_bytes=MAX, now=T0)
    deliver(T0 + timedelta(minutes=1))
    assert about_messages(sink, agent.email) == [] and about_messages(sink, colleague.email) == []


def test_without_assignee_nor_follower_the_instructors_are_told(session, sink):  # noqa: F811
    dossier = factories.dossier("received", aid=2)
    agent = factories.applicant_of(dossier.collectivite)
    first, second = factories.user("instructor"), factories.user("instructor")
    factories.user("finance")
    session.commit()
    deliver(NOW)
    team.post_message(dossier, agent, "Bonjour", [], max_bytes=MAX, now=T0)
    deliver(T0)
    told = {m["To"] for m in about_messages(sink)}
    assert {first.email, second.email} <= told
    assert all(factories.db.session.scalar(select(factories.User.role).where(factories.User.email == e))
               == "instructor" for e in told)


def test_completion_and_withdrawal_tell_the_assignee_and_followers_and_the_applicant_gets_a_receipt(session, sink):  # noqa: F811
    dossier, agent, colleague, _, grouped, digest, bystander = world(session)
    dossiers.request_documents(dossier, grouped, "La facture.", now=T0)
    dossiers.resubmit(dossier, agent, "Voici.", now=T0 + timedelta(minutes=5))
    deliver(T0 + timedelta(minutes=6))
    completed = [m for m in sink.messages if "piècescomplémentairesreçues" in subject(m)]
    assert sorted(m["To"] for m in completed) == sorted([grouped.email, digest.email])

    sink.messages.clear()
    dossiers.withdraw(dossier, agent, "Projet abandonné", now=T0 + timedelta(minutes=10))
    deliver(T0 + timedelta(minutes=11))
    withdrawn = [m for m in sink.messages if "dossierretiré" in subject(m)]
    by_address = {m["To"]: parts(m)["text/plain"] for m in withdrawn}
    assert set(by_address) == {grouped.email, digest.email, agent.email, colleague.email}
    assert "Le demandeur (CC de la Plaine Dijonnaise) a retiré le dossier" in by_address[grouped.email]
    assert "Nous accusons réception du retrait de votre dossier" in by_address[agent.email]
    assert "« Projet abandonné »" in by_address[agent.email]
    assert bystander.email not in by_address


def test_a_withdrawal_without_assignee_nor_follower_tells_the_instructors(session, sink):  # noqa: F811
    dossier = factories.dossier("received", aid=2)
    agent = factories.applicant_of(dossier.collectivite)
    instructor = factories.user("instructor")
    finance = factories.user("finance")
    session.commit()
    dossiers.withdraw(dossier, agent, "Doublon", now=T0)
    deliver(T0)
    told = {m["To"] for m in sink.messages if "dossierretiré" in subject(m)}
    assert instructor.email in told and agent.email in told and finance.email not in told


def test_the_assignee_is_told_unless_they_took_it_themselves(session, sink):  # noqa: F811
    dossier, _, _, _, grouped, digest, bystander = world(session)
    assert team.assign_to(dossier, bystander, grouped, now=T0) is True
    assert team.assign_to(dossier, bystander, grouped, now=T0) is False  # already theirs
    assert team.assign_to(dossier, digest, digest, now=T0 + timedelta(minutes=1)) is True
    deliver(T0 + timedelta(minutes=2))
    assigned = [m for m in sink.messages if "vousenêteschargé" in subject(m)]
    assert [m["To"] for m in assigned] == [bystander.email]
    assert "Inès Moreau vous a attribué l'instruction du dossier" in parts(assigned[0])["text/plain"]
