"""Grants voted by the commission permanente: agenda, vote, batch of grants (expected by hand)."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import func, select

from instruction.acts import services as acts
from instruction.commission import services as commission
from instruction.commission.agenda import agenda_pdf, agenda_xlsx
from instruction.dossiers.models import AuditEvent, Envelope
from instruction.notifications.models import OutboxMessage
from tests import factories

VOTED = datetime(2026, 12, 7, 17, 0, tzinfo=UTC)
BATCH = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
A, B = "200000925", "200070894"  # CC de la Plaine Dijonnaise; CC de Gevrey-Chambertin et de Nuits-Saint-Georges


def lines(amount: str):
    return [{"category": "equipement", "label": "Serveurs", "amount_ht": amount}]


def eligible(siren: str, amount: str, aid: int = 2):
    """An eligible dossier: 40 % of ``amount``."""
    return factories.dossier("eligible", aid=aid, collectivite=factories.epci(siren), lines=lines(amount))


@pytest.fixture
def voting(session):
    campaign = factories.campaign()
    campaign.grants_need_vote = True
    session.flush()
    return campaign


def consumed(aid: int, siren: str) -> Decimal:
    scope = "epci:" + siren
    return factories.db.session.scalar(select(Envelope.consumed).where(
        Envelope.aid_number == aid, Envelope.scope == scope)) or Decimal("0.00")


def test_five_lines_one_no_longer_fits_four_granted_one_reported_and_a_second_run_changes_nothing(voting, session):
    admin, instructor = factories.staff("admin"), factories.staff("instructor")
    a1, a2, a3 = eligible(A, "10000.00"), eligible(A, "30000.00"), eligible(A, "30000.00")
    b1, b3 = eligible(B, "20000.00"), eligible(B, "10000.00", aid=3)
    cp = commission.create_session(voting, session_on=date(2026, 12, 7), place="Besançon, hôtel de Région",
                                   actor=instructor, now=factories.NOW)
    for dossier, amount in ((a1, "4000.00"), (a2, "12000.00"), (a3, "12000.00"), (b1, "8000.00"),
                            (b3, "4000.00")):
        commission.propose(cp, dossier, Decimal(amount), actor=instructor, now=factories.NOW)

    # The agenda, before the session: grouped by aid then EPCI (by name), envelope before / after.
    sheet = load_workbook(io.BytesIO(agenda_xlsx(cp))).active
    rows = [r for r in sheet.iter_rows(values_only=True) if r and r[2] and str(r[2]).startswith("DEMO")]
    assert [(r[0], r[2], r[5], r[7], r[8]) for r in rows] == [
        ("Aide 2", b1.reference, 8000, 0, 8000),
        ("Aide 2", a1.reference, 4000, 0, 4000),
        ("Aide 2", a2.reference, 12000, 4000, 16000),
        ("Aide 2", a3.reference, 12000, 16000, 28000),
        ("Aide 3", b3.reference, 4000, 0, 4000),
    ]
    assert rows[0][1] == "CC de Gevrey-Chambertin et de Nuits-Saint-Georges"
    assert rows[1][1] == "CC de la Plaine Dijonnaise"
    pdf = "".join("".join(p.extract_text() for p in PdfReader(io.BytesIO(agenda_pdf(cp))).pages).split())
    assert "Commissionpermanentedu7décembre2026" in pdf
    assert all(d.reference.replace("-", "") in pdf.replace("-", "") for d in (a1, a2, a3, b1, b3))

    # Meanwhile an urgent session grants 6,000 € to another dossier of A: 6,000 + 4,000 + 12,000
    # leaves 8,000 € in A's 30,000 € envelope, less than a3's 12,000 €.
    a4 = eligible(A, "15000.00")
    urgent = commission.create_session(voting, session_on=date(2026, 12, 1), place="Dijon",
                                       actor=instructor, now=factories.NOW)
    commission.propose(urgent, a4, Decimal("6000.00"), actor=instructor, now=factories.NOW)
    commission.record_vote(urgent, number="CP-2026-12-01", outcomes={urgent.lines[0].id: ("adopted", None)},
                           actor=admin, now=VOTED)
    commission.grant_adopted(urgent, actor=admin, now=VOTED)
    assert consumed(2, A) == Decimal("6000.00")

    commission.record_vote(cp, number="CP-2026-12-07", actor=admin, now=VOTED,
                           outcomes={line.id: ("adopted", None) for line in cp.lines})
    report = commission.grant_adopted(cp, actor=admin, now=BATCH)
    assert sorted(line.dossier.reference for line in report.granted) == sorted(
        d.reference for d in (a1, a2, b1, b3))
    [left] = report.reported
    assert left.dossier is a3 and a3.state == "eligible" and a3.granted_amount is None
    assert "plafond" in left.report.lower()
    assert (a1.granted_amount, a2.granted_amount, b1.granted_amount, b3.granted_amount) == (
        Decimal("4000.00"), Decimal("12000.00"), Decimal("8000.00"), Decimal("4000.00"))
    assert consumed(2, A) == Decimal("22000.00")
    assert consumed(2, B) == Decimal("8000.00")
    assert consumed(3, B) == Decimal("4000.00")

    # Each letter cites the deliberation.
    letter = acts.acts_of(a2.id)[-1]
    assert letter.kind == "grant" and letter.content["deliberation"]["number"] == "CP-2026-12-07"
    acts.ensure_rendered(letter, now=BATCH)
    text = "".join("".join(p.extract_text() for p in PdfReader(io.BytesIO(acts.pdf_of(letter))).pages).split())
    assert "délibérationn°CP-2026-12-07delacommissionpermanentedu7décembre2026" in text

    def state():
        return (consumed(2, A), consumed(2, B), consumed(3, B),
                session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "grant")),
                session.scalar(select(func.count()).select_from(OutboxMessage)),
                [(line.result, line.report, line.processed_at) for line in cp.lines])

    before = state()
    again = commission.grant_adopted(cp, actor=admin, now=datetime(2026, 12, 9, tzinfo=UTC))
    assert again.granted == [] and [line.dossier for line in again.reported] == [a3]
    assert state() == before


def test_amended_deferred_rejected(voting, session):
    admin, instructor = factories.staff("admin"), factories.staff("instructor")
    amended, deferred, rejected = eligible(A, "10000.00"), eligible(A, "10000.00"), eligible(B, "10000.00")
    cp = commission.create_session(voting, session_on=date(2026, 12, 7), place="Besançon",
                                   actor=instructor, now=factories.NOW)
    for d in (amended, deferred, rejected):
        commission.propose(cp, d, Decimal("4000.00"), actor=instructor, now=factories.NOW)
    with pytest.raises(commission.InvalidSessionInput, match="ne peut pas dépasser"):
        commission.record_vote(cp, number="CP-1", actor=admin, now=VOTED, outcomes={
            cp.lines[0].id: ("amended", "4000.01"), cp.lines[1].id: ("deferred", None),
            cp.lines[2].id: ("rejected", None)})
    assert [line.outcome for line in cp.lines] == ["pending"] * 3  # nothing half-recorded
    commission.record_vote(cp, number="CP-1", actor=admin, now=VOTED, outcomes={
        cp.lines[0].id: ("amended", "2500.00"), cp.lines[1].id: ("deferred", None),
        cp.lines[2].id: ("rejected", None)})
    report = commission.grant_adopted(cp, actor=admin, now=BATCH)
    assert [line.dossier for line in report.granted] == [amended] and report.reported == []
    assert amended.granted_amount == Decimal("2500.00")
    assert (deferred.state, rejected.state) == ("eligible", "eligible")
    assert consumed(2, A) == Decimal("2500.00") and consumed(2, B) == Decimal("0.00")
    # a deferred dossier goes to a later session
    later = commission.create_session(voting, session_on=date(2027, 1, 11), place="Besançon",
                                      actor=instructor, now=BATCH)
    commission.propose(later, deferred, Decimal("4000.00"), actor=instructor, now=BATCH)


def test_guards(voting, session):
    admin, instructor = factories.staff("admin"), factories.staff("instructor")
    dossier = eligible(A, "10000.00")
    cp = commission.create_session(voting, session_on=date(2026, 12, 7), place="Besançon",
                                   actor=instructor, now=factories.NOW)
    with pytest.raises(commission.InvalidSessionInput, match="ne peut pas dépasser"):
        commission.propose(cp, dossier, Decimal("4000.01"), actor=instructor, now=factories.NOW)
    with pytest.raises(commission.InvalidSessionInput):
        commission.propose(cp, dossier, Decimal("0"), actor=instructor, now=factories.NOW)
    with pytest.raises(commission.SessionForbidden):
        commission.propose(cp, dossier, Decimal("100.00"), actor=factories.staff("finance"), now=factories.NOW)
    commission.propose(cp, dossier, Decimal("4000.00"), actor=instructor, now=factories.NOW)
    other = commission.create_session(voting, session_on=date(2026, 12, 14), place="Dijon",
                                      actor=instructor, now=factories.NOW)
    with pytest.raises(commission.SessionRefused, match="déjà inscrit"):
        commission.propose(other, dossier, Decimal("4000.00"), actor=instructor, now=factories.NOW)
    with pytest.raises(commission.SessionRefused, match="éligible"):
        commission.propose(other, factories.dossier("received"), Decimal("10.00"), actor=instructor,
                           now=factories.NOW)
    with pytest.raises(commission.SessionForbidden):
        commission.record_vote(cp, number="CP-9", outcomes={}, actor=instructor, now=VOTED)
    with pytest.raises(commission.InvalidSessionInput, match="vote sur le dossier"):
        commission.record_vote(cp, number="CP-9", outcomes={}, actor=admin, now=VOTED)
    with pytest.raises(commission.SessionRefused, match="pas encore enregistrée"):
        commission.grant_adopted(cp, actor=admin, now=BATCH)
    # without a vote, the instructor cannot grant directly either
    from instruction.dossiers import services

    with pytest.raises(services.ActionConflict, match="commission permanente"):
        services.grant(dossier, instructor, now=BATCH)


def test_without_the_parameter_no_session_and_direct_grants(session):
    campaign = factories.campaign()
    assert campaign.grants_need_vote is False
    with pytest.raises(commission.SessionRefused, match="sans vote"):
        commission.create_session(campaign, session_on=date(2026, 12, 7), place="Besançon",
                                  actor=factories.staff("instructor"), now=factories.NOW)
    dossier = eligible(A, "10000.00")
    from instruction.dossiers import services

    services.grant(dossier, factories.staff("instructor"), now=BATCH)
    assert dossier.state == "granted"
    assert acts.acts_of(dossier.id)[-1].content["deliberation"] is None


def test_the_pages_of_a_session(voting, client, session):
    admin = factories.staff_logged_in(client, session, "admin")
    dossier = eligible(A, "10000.00")
    session.commit()
    page = client.get("/instruction/commission/").get_data(as_text=True)
    assert "Nouvelle séance" in page
    bad = client.post("/instruction/commission/", data={"campaign_id": voting.id, "session_on": "31/02/2026",
                                                       "place": "Besançon"})
    assert bad.status_code == 400
    created = client.post("/instruction/commission/", data={"campaign_id": voting.id, "session_on": "07/12/2026",
                                                           "place": "Besançon"})
    assert created.status_code == 302
    [cp] = commission.sessions_of(voting.id)
    too_much = client.post(f"/instruction/commission/{cp.id}/proposer",
                           data={"reference": dossier.reference, "amount": "4 000,01"})
    assert too_much.status_code == 400 and "ne peut pas dépasser" in too_much.get_data(as_text=True)
    unknown = client.post(f"/instruction/commission/{cp.id}/proposer", data={"reference": "NOPE", "amount": "10"})
    assert unknown.status_code == 400 and "Aucun dossier déposé" in unknown.get_data(as_text=True)
    assert client.post(f"/instruction/commission/{cp.id}/proposer",
                       data={"reference": dossier.reference.lower(), "amount": "3 000,00"}).status_code == 302
    xlsx = client.get(f"/instruction/commission/{cp.id}/ordre-du-jour.xlsx")
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"
    assert client.get(f"/instruction/commission/{cp.id}/ordre-du-jour.pdf").data[:5] == b"%PDF-"
    session.expire_all()
    line = session.get(type(cp), cp.id).lines[0]
    bad_amount = client.post(f"/instruction/commission/{cp.id}/deliberation",
                             data={"numero": "CP-7", f"vote-{line.id}": "amended", f"montant-{line.id}": "abc"})
    assert bad_amount.status_code == 400
    voted = client.post(f"/instruction/commission/{cp.id}/deliberation",
                        data={"numero": "CP-7", f"vote-{line.id}": "amended", f"montant-{line.id}": "2 500,00"})
    assert voted.status_code == 302
    done = client.post(f"/instruction/commission/{cp.id}/attribuer", follow_redirects=True)
    assert "1 subvention(s) attribuée(s)" in done.get_data(as_text=True)
    session.expire_all()
    granted = session.get(type(dossier), dossier.id)
    assert granted.state == "granted" and granted.granted_amount == Decimal("2500.00")
    assert admin is not None


def test_the_dossier_page_offers_no_grant_when_the_campaign_votes_them(voting, client, session):
    """The grant is refused outside a deliberation: the page says so instead of offering it."""
    import html

    dossier = factories.dossier("eligible", aid=2)
    factories.staff_logged_in(client, session)
    page = html.unescape(client.get(f"/instruction/dossiers/{dossier.id}").get_data(as_text=True))
    assert 'data-unavailable="grant"' in page and 'data-action="grant"' not in page
    assert "votées par la commission permanente : inscrivez le dossier à une séance" in page
    assert 'data-action="declare_ineligible"' in page  # the other decisions stay offered
