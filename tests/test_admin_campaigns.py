"""Administration of campaigns: a later deadline for one dossier (that dossier, and only it, may be
submitted late; the portal and the expiry job honour it), a campaign created from another, opening
or closing early with a message to the applicants who have a draft, and the rules in force shown
in words (never their internal names)."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from instruction.campaigns.models import Campaign
from instruction.campaigns.services import sync_campaigns
from instruction.dossiers import jobs as dossier_jobs
from instruction.dossiers import services as dossiers
from instruction.dossiers.models import AuditEvent, Dossier
from instruction.notifications.models import OutboxMessage
from tests import factories

pytestmark = pytest.mark.usefixtures("fresh_limiter")

# The demo campaign: submissions until 30 June 2027 inclusive (deadline 1 July 2027 00:00 Paris).
LATE = datetime(2027, 7, 5, 8, 0, tzinfo=UTC)  # after the campaign's deadline
EXTENDED_UNTIL = datetime(2027, 7, 10, 22, 0, tzinfo=UTC)  # 11 July 2027 00:00 Paris: last day 10 July


def text(response) -> str:
    return re.sub(r"\s+", " ", html.unescape(response.get_data(as_text=True)))


@pytest.fixture
def admin(client, session):
    return factories.staff_logged_in(client, session, "admin")


def freeze(monkeypatch, instant):
    monkeypatch.setattr("instruction.clock.now", lambda: instant)


def test_a_deadline_extension_lets_that_dossier_and_only_it_be_submitted_late(client, session, admin,
                                                                              monkeypatch, app):
    chosen = factories.dossier("draft", aid=2)
    other = factories.dossier("draft", aid=2, collectivite=factories.epci("200023075"))
    session.commit()
    campaign = chosen.campaign
    freeze(monkeypatch, factories.NOW)
    response = client.post(f"/administration/campagnes/{campaign.id}/prolonger", data={
        "reference": chosen.reference.lower(), "last_day": "2027-07-10", "reason": "Panne du réseau de la mairie"})
    assert response.status_code == 302
    session.expire_all()
    assert chosen.extended_deadline_at == EXTENDED_UNTIL and other.extended_deadline_at is None
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "extend_deadline")).all()
    assert (event.dossier_id, event.actor_id, event.reason) == (chosen.id, admin.id, "Panne du réseau de la mairie")
    assert event.before == {"deadline": "2027-06-30T22:00:00+00:00"}
    assert event.after == {"deadline": "2027-07-10T22:00:00+00:00"}
    told = session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "extend_deadline"))
    assert told.dossier_id == chosen.id and told.context["last_day"] == "10 juillet 2027"

    # After the campaign's deadline, in the portal: the chosen dossier is submitted, the other is not.
    freeze(monkeypatch, LATE)
    client.post("/deconnexion")
    agent = factories.applicant_of(chosen.collectivite)
    factories.log_in(client, agent)
    page = text(client.get(f"/portail/dossiers/{chosen.id}"))
    assert "10 juillet 2027" in page
    assert client.post(f"/portail/dossiers/{chosen.id}/deposer").status_code == 302
    client.post("/deconnexion")
    factories.log_in(client, factories.applicant_of(other.collectivite))
    refused = client.post(f"/portail/dossiers/{other.id}/deposer")
    assert refused.status_code == 409 and "Date limite dépassée" in text(refused)
    session.expire_all()
    assert (chosen.state, other.state) == ("received", "draft")
    assert chosen.submitted_at == LATE


def test_the_expiry_job_honours_the_extension(session):
    admin = factories.user("admin")
    kept = factories.dossier("draft", aid=2)
    expired = factories.dossier("draft", aid=2, collectivite=factories.epci("200023075"))
    dossiers.extend_deadline(kept, admin, EXTENDED_UNTIL, "Motif", now=factories.NOW)
    session.commit()
    dossier_jobs.expire_drafts(LATE)
    session.expire_all()
    assert (kept.state, expired.state) == ("draft", "expired")
    dossier_jobs.expire_drafts(datetime(2027, 7, 10, 21, 59, tzinfo=UTC))  # 10 July, 23:59 in Paris
    session.expire_all()
    assert kept.state == "draft"
    dossier_jobs.expire_drafts(EXTENDED_UNTIL)
    session.expire_all()
    assert kept.state == "expired"


def test_extending_an_expired_draft_makes_it_a_draft_again(session):
    admin = factories.user("admin")
    draft = factories.dossier("draft", aid=2)
    dossiers.expire(draft, None, now=LATE)
    session.commit()
    assert draft.state == "expired" and draft.closed_at == LATE
    dossiers.extend_deadline(draft, admin, EXTENDED_UNTIL, "Erreur de la Région", now=LATE)
    assert (draft.state, draft.closed_at, draft.extended_deadline_at) == ("draft", None, EXTENDED_UNTIL)
    agent = factories.applicant_of(draft.collectivite)
    dossiers.submit(draft, agent, now=LATE)
    assert draft.state == "received"


@pytest.mark.parametrize("last_day, message", [
    ("2027-06-15", "postérieure à celle de la campagne (30 juin 2027)"),
    ("2026-11-01", "dans le futur"),
])
def test_an_extension_must_be_later_than_the_campaign_and_the_present(client, session, admin, monkeypatch,
                                                                      last_day, message):
    draft = factories.dossier("draft", aid=2)
    session.commit()
    freeze(monkeypatch, factories.NOW)
    response = client.post(f"/administration/campagnes/{draft.campaign_id}/prolonger", data={
        "reference": draft.reference, "last_day": last_day, "reason": "Motif"})
    assert response.status_code == 400 and message in text(response)
    session.expire_all()
    assert draft.extended_deadline_at is None


def test_an_extension_needs_a_reason_and_a_dossier_of_the_campaign(client, session, admin, monkeypatch):
    draft = factories.dossier("draft", aid=2)
    session.commit()
    freeze(monkeypatch, factories.NOW)
    url = f"/administration/campagnes/{draft.campaign_id}/prolonger"
    response = client.post(url, data={"reference": draft.reference, "last_day": "2027-07-10", "reason": ""})
    assert response.status_code == 400 and "Indiquez le motif" in text(response)
    other_campaign = factories.campaign("pair-2021")
    response = client.post(f"/administration/campagnes/{other_campaign.id}/prolonger",
                           data={"reference": draft.reference, "last_day": "2027-07-10", "reason": "Motif"})
    assert response.status_code == 400 and "Aucun dossier de cette campagne" in text(response)
    submitted = factories.dossier("received", aid=2, collectivite=factories.epci("200023075"))
    session.commit()
    response = client.post(url, data={"reference": submitted.reference, "last_day": "2027-07-10", "reason": "Motif"})
    assert response.status_code == 409


def test_a_campaign_created_from_another_keeps_its_rules_and_its_own_dates(client, session, admin, monkeypatch):
    freeze(monkeypatch, factories.NOW)
    demo = factories.campaign("demo")
    response = client.post(f"/administration/campagnes/{demo.id}/copier", data={
        "title": "Campagne 2028", "code": "campagne-2028", "reference_prefix": "PAIR28",
        "opens_on": "2028-01-01", "last_day": "2028-06-30"})
    assert response.status_code == 302
    created = session.scalar(select(Campaign).where(Campaign.code == "campagne-2028"))
    assert created.parameters_code == "demo" and [a.number for a in created.aids] == [1, 2, 3, 4, 5]
    assert created.opens_at == datetime(2027, 12, 31, 23, 0, tzinfo=UTC)
    assert created.deadline_at == datetime(2028, 6, 30, 22, 0, tzinfo=UTC)
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "create_campaign")).all()
    assert event.subject_id == created.id and event.after["parameters"] == demo.title
    assert sync_campaigns() == [] or all("campagne-2028" not in c for c in sync_campaigns())
    session.expire_all()
    assert created.deadline_at == datetime(2028, 6, 30, 22, 0, tzinfo=UTC)
    # Its dossiers follow its own dates: a draft of it may be submitted in 2028, not in 2027.
    draft = dossiers.create_draft(campaign=created, aid_number=2, collectivite=factories.epci(),
                                  author=factories.applicant_of(factories.epci()), title="P", now=factories.NOW)
    factories.attach_document(dossiers.add_line(draft, category="equipement", label="Serveur",
                                                amount_ht=factories.Decimal("10000.00")))
    agent = factories.applicant_of(factories.epci())
    with pytest.raises(dossiers.ActionConflict, match="pas encore ouverte"):
        dossiers.submit(draft, agent, now=LATE)
    dossiers.submit(draft, agent, now=datetime(2028, 3, 1, 9, 0, tzinfo=UTC))
    assert draft.reference.startswith("PAIR28-A2-")
    duplicate = client.post(f"/administration/campagnes/{demo.id}/copier", data={
        "title": "Encore", "code": "campagne-2028", "reference_prefix": "X",
        "opens_on": "2028-01-01", "last_day": "2028-06-30"})
    assert duplicate.status_code == 400 and "déjà le code" in text(duplicate)


def test_closing_early_tells_every_applicant_with_a_draft_and_refuses_later_submissions(
        client, session, admin, monkeypatch):
    with_draft = factories.dossier("draft", aid=2)
    submitted = factories.dossier("received", aid=2, collectivite=factories.epci("200023075"))
    session.commit()
    campaign = with_draft.campaign
    freeze(monkeypatch, factories.NOW)
    response = client.post(f"/administration/campagnes/{campaign.id}/clore",
                           data={"message": "L'enveloppe régionale est épuisée."})
    assert response.status_code == 302
    session.expire_all()
    assert campaign.deadline_at == factories.NOW and campaign.dates_set_by_admin
    [message] = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "campaign_dates")).all()
    recipients = {d.email for d in message.deliveries}
    assert recipients == {factories.applicant_of(with_draft.collectivite).email}
    assert factories.applicant_of(submitted.collectivite).email not in recipients
    assert message.context["message"] == "L'enveloppe régionale est épuisée."
    assert message.context["drafts"] == [with_draft.reference] and message.context["still_open"] is False
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "change_campaign_dates")).all()
    assert event.before["deadline_at"] == "2027-06-30T22:00:00+00:00"
    with pytest.raises(dossiers.ActionConflict, match="Date limite dépassée"):
        dossiers.submit(with_draft, factories.applicant_of(with_draft.collectivite), now=factories.NOW)
    # The parameter file's dates do not come back with `campaigns load`.
    sync_campaigns()
    session.expire_all()
    assert campaign.deadline_at == factories.NOW
    again = client.post(f"/administration/campagnes/{campaign.id}/clore", data={"message": ""})
    assert again.status_code == 400 and "déjà close" in text(again)


def test_opening_early(client, session, admin, monkeypatch):
    freeze(monkeypatch, factories.NOW)
    demo = factories.campaign("demo")
    client.post(f"/administration/campagnes/{demo.id}/copier", data={
        "title": "Campagne 2027 bis", "code": "bis", "reference_prefix": "BIS",
        "opens_on": "2027-02-01", "last_day": "2027-12-31"})
    bis = session.scalar(select(Campaign).where(Campaign.code == "bis"))
    response = client.post(f"/administration/campagnes/{bis.id}/ouvrir", data={"message": ""})
    assert response.status_code == 302
    session.expire_all()
    assert bis.opens_at == factories.NOW
    assert client.post(f"/administration/campagnes/{bis.id}/ouvrir", data={}).status_code == 400


def test_the_rules_in_force_are_shown_in_words_with_dates_and_references(client, admin):
    demo = factories.campaign("demo")
    page = text(client.get(f"/administration/campagnes/{demo.id}"))
    cells = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))
    assert "Population strictement inférieure à 1 000 habitants 1er janvier 2021" in cells
    assert "Guide des aides numériques, aide 1 : « de moins de 1.000 habitants »" in page
    assert "Plafond apprécié à l'échelle de l'EPCI, de ses communes et de ses SIVOS" in page
    assert "40 % des dépenses éligibles HT" in page and "2 500,00 € HT" in page
    for internal in ("epci-territoire", "epci-ville-centre", "demo@", "population_below", "cap_scope"):
        assert internal not in page


def test_campaign_pages_are_refused_to_other_roles(client, session):
    factories.staff_logged_in(client, session, "instructor")
    demo = factories.campaign("demo")
    assert client.get("/administration/campagnes").status_code == 403
    assert client.get(f"/administration/campagnes/{demo.id}").status_code == 403
    for action in ("copier", "ouvrir", "clore", "prolonger"):
        assert client.post(f"/administration/campagnes/{demo.id}/{action}").status_code == 403
    assert session.scalar(select(Dossier.id).where(Dossier.extended_deadline_at.is_not(None))) is None
