"""The implicit-decision date is watched: queue column, sort and filter; the instructors' digest."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from instruction.accounts.models import User
from instruction.notifications.models import Delivery, OutboxMessage
from instruction.teamwork import digest
from tests import factories

PARIS = ZoneInfo("Europe/Paris")


def paris(*args) -> datetime:
    return datetime(*args, tzinfo=PARIS).astimezone(UTC)


def three_dossiers():
    """Implicit rejection on 10 May, 1 April and 30 June 2026 (two months after submission)."""
    return (factories.dossier("received", now=paris(2026, 3, 10, 12)),
            factories.dossier("received", now=paris(2026, 2, 1, 12)),
            factories.dossier("eligible", now=paris(2026, 4, 30, 12)))


def row_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-dossier="(\d+)"', html)]


def test_queue_shows_sorts_and_filters_by_implicit_decision_date(client, session):
    may, april, june = three_dossiers()
    decided = factories.dossier("granted", now=paris(2026, 1, 20, 12))
    assert decided.implicit_decision_on is None
    assert (may.implicit_decision_on, april.implicit_decision_on, june.implicit_decision_on) == (
        date(2026, 5, 10), date(2026, 4, 1), date(2026, 6, 30))
    factories.staff_logged_in(client, session)
    page = client.get("/instruction/?onglet=tous&tri=rejet").get_data(as_text=True)
    assert "Rejet implicite le" in page and "10 mai 2026" in page
    assert row_ids(page) == [april.id, may.id, june.id, decided.id]  # none last
    page = client.get("/instruction/?onglet=tous&tri=rejet&ordre=desc").get_data(as_text=True)
    assert row_ids(page)[:3] == [june.id, may.id, april.id]
    page = client.get("/instruction/?onglet=tous&tri=rejet&rejet_au=2026-05-10").get_data(as_text=True)
    assert row_ids(page) == [april.id, may.id]  # the day itself included; undated left out
    bad = client.get("/instruction/?onglet=tous&rejet_au=31/02/2026")
    assert bad.status_code == 200
    assert "Date de rejet implicite « 31/02/2026 » invalide" in bad.get_data(as_text=True)


def digests_of(user: User) -> list[OutboxMessage]:
    return list(factories.db.session.scalars(
        select(OutboxMessage).join(Delivery).where(OutboxMessage.kind == "digest",
                                                   Delivery.user_id == user.id)
        .order_by(OutboxMessage.id)))


def test_digest_lists_dossiers_reaching_their_implicit_rejection_within_15_days(session):
    instructor = factories.user("instructor")
    may, april, june = three_dossiers()
    session.commit()
    # Thursday 16 April 2026: 10 May is 24 days ahead, 1 April is past: nothing to say
    assert digest.send_digests(paris(2026, 4, 16, 8)) == "0 synthèse(s) envoyée(s)"
    # Monday 27 April 2026: 10 May is 13 days ahead (in); 30 June is not
    digest.send_digests(paris(2026, 4, 27, 8))
    [first] = digests_of(instructor)
    assert [d["reference"] for d in first.context["implicit"]] == [may.reference]
    assert first.context["implicit"][0]["on"] == "10 mai 2026"
    # Friday 12 June 2026: 30 June is 18 days ahead: not yet (the digest has a new dossier)
    digest.send_digests(paris(2026, 6, 12, 8))
    assert digests_of(instructor)[1].context["implicit"] == []
    # Monday 15 June 2026: 30 June is exactly 15 days ahead: included
    digest.send_digests(paris(2026, 6, 15, 8))
    assert [d["reference"] for d in digests_of(instructor)[2].context["implicit"]] == [june.reference]
