"""Legal acts: acknowledgments of receipt and decision letters (content, PDF, e-mail, download)."""

from __future__ import annotations

import hashlib
import io
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from instruction.acts import services as acts
from instruction.acts.models import LegalAct
from instruction.dossiers import services
from instruction.notifications.models import OutboxMessage
from instruction.settings.services import update_identity
from tests import factories

# 4 March 2031, 10:00 UTC = 11:00 in Paris; the demo campaign is then over, so dossiers are
# submitted at factories.NOW (28 November 2026) and acted upon later.
SUBMITTED = factories.NOW  # 28 novembre 2026


class Text(str):
    """The text of a PDF; ``in`` ignores spaces and line breaks (a long URL wraps)."""

    def __contains__(self, mention: object) -> bool:
        return re.sub(r"\s+", "", str(mention)) in re.sub(r"\s+", "", str(self))


def text_of(pdf: bytes) -> Text:
    reader = PdfReader(io.BytesIO(pdf))
    return Text("\n".join(page.extract_text() for page in reader.pages).replace("\u00a0", " "))


def acts_of(dossier, kind=None):
    return [a for a in acts.acts_of(dossier.id) if kind is None or a.kind == kind]


def rendered(act) -> bytes:
    acts.ensure_rendered(act, now=datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    return acts.pdf_of(act)


def outbox(dossier, kind):
    return list(factories.db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.dossier_id == dossier.id, OutboxMessage.kind == kind)))


def test_submission_issues_an_acknowledgment_with_the_crpa_mentions(session):
    dossier = factories.dossier("received")
    assert dossier.implicit_decision_on == date(2027, 1, 28)  # 28 November 2026 + two months
    [act] = acts_of(dossier, "acknowledgment")
    text = text_of(rendered(act))
    for mention in (
        "Accusé de réception",
        dossier.reference,
        "Date de réception de la demande 28 novembre 2026",
        "Date de décision implicite de rejet 28 janvier 2027",
        "réputée rejetée le 28 janvier 2027",
        "2 mois",
        "L231-4",
        "L112-3 et R112-5",
        # the service in charge and how to reach it
        "Direction du numérique",
        "4 square Castan",
        "aides-numeriques@bourgognefranchecomte.fr",
        "03 81 61 61 61",
        # voies et délais de recours against the implicit rejection
        "Voies et délais de recours",
        "recours gracieux",
        "Tribunal administratif de Besançon",
        "30 rue Charles Nodier",
        "Télérecours citoyens",
        "https://citoyens.telerecours.fr",
    ):
        assert mention in text, mention
    [message] = outbox(dossier, "submit")
    assert message.context["implicit_decision_on"] == "28 janvier 2027"
    assert message.context["received_on"] == "28 novembre 2026"
    assert message.context["act"] == {"id": act.id, "kind": "acknowledgment",
                                      "title": "Accusé de réception", "path": f"/actes/{act.id}/pdf"}
    assert message.context["identity"]["telephone"] == "03 81 61 61 61"


def test_the_pdf_is_pdf_a(session):
    act = acts_of(factories.dossier("received"), "acknowledgment")[0]
    pdf = rendered(act)
    assert pdf.startswith(b"%PDF-")
    catalog = PdfReader(io.BytesIO(pdf)).trailer["/Root"]
    xmp = catalog["/Metadata"].get_object().get_data()
    assert b'pdfaid:part="3"' in xmp or b"<pdfaid:part>3</pdfaid:part>" in xmp
    assert catalog["/OutputIntents"][0].get_object()["/S"] == "/GTS_PDFA1"


def test_a_request_for_documents_gives_the_list_and_the_due_date_and_completion_restarts_the_period(session):
    dossier = factories.dossier("received")
    instructor = factories.staff("instructor")
    services.request_documents(dossier, instructor, "La facture signée du serveur.",
                               now=datetime(2026, 12, 10, 9, 0, tzinfo=UTC))
    assert dossier.implicit_decision_on is None
    assert dossier.documents_due_on == date(2027, 1, 9)  # 10 December + 30 days
    [request] = outbox(dossier, "request_documents")
    assert request.context["missing"] == "La facture signée du serveur."
    assert request.context["due_on"] == "9 janvier 2027"
    applicant = factories.applicant_of(dossier.collectivite)
    # completed on 31 December 2026 (Paris): 31 February does not exist -> 28 February 2027
    services.resubmit(dossier, applicant, "Voici la facture.",
                      now=datetime(2026, 12, 31, 16, 0, tzinfo=UTC))
    assert dossier.implicit_decision_on == date(2027, 2, 28)
    assert dossier.documents_due_on is None
    first, second = acts_of(dossier, "acknowledgment")
    text = text_of(rendered(second))
    assert "Dossier complet le 31 décembre 2026" in text
    assert "réputée rejetée le 28 février 2027" in text
    assert "Date de réception de la demande 28 novembre 2026" in text
    [ack] = outbox(dossier, "acknowledgment")
    assert ack.context["implicit_decision_on"] == "28 février 2027"
    assert {d.email for d in ack.deliveries} == {applicant.email}
    # The two acknowledgments are told apart, on the pages, in the e-mail and on the PDF itself.
    assert (first.title, second.title) == ("Accusé de réception", "Accusé de réception du dossier complet")
    assert ack.context["act"]["title"] == "Accusé de réception du dossier complet"
    assert "Accusé de réception du dossier complet" in text
    assert "Accusé de réception du dossier complet" not in text_of(rendered(first))


def test_a_grant_letter_says_everything_and_its_bytes_never_change(session):
    dossier = factories.dossier("eligible", aid=2)  # 10,000.00 € of equipment at 40 %
    instructor = factories.staff("instructor")
    services.grant(dossier, instructor, Decimal("3980.80"), now=datetime(2026, 12, 2, 9, 0, tzinfo=UTC))
    [letter] = acts_of(dossier, "grant")
    pdf = rendered(letter)
    text = text_of(pdf)
    for mention in (
        "Notification d'attribution de subvention",
        "Région Bourgogne-Franche-Comté",
        dossier.collectivite.name,
        "Aide n° 2",
        "Base éligible (dépenses HT) 10 000,00 €",
        "taux de 40 % des dépenses éligibles HT",
        "Guide des aides numériques, aide 2 : taux de 40 %",  # the legal reference of the rule
        "3 980,80 €",
        "trois mille neuf cent quatre-vingts euros et quatre-vingts centimes",
        "Conditions de versement",
        "24 mois",
        dossier.reference,
        "Le 2 décembre 2026",
        "Marie-Guite Dufay",
        "recours gracieux",
        "recours contentieux",
        "Tribunal administratif de Besançon",
        "Télérecours citoyens",
        "2 mois à compter de sa notification",
    ):
        assert mention in text, mention
    key, sha = letter.storage_key, letter.sha256
    assert hashlib.sha256(pdf).hexdigest() == sha
    # a later change of the service's identity, a second rendering: nothing changes
    update_identity({"signatory_name": "Quelqu'un d'autre"}, now=datetime(2026, 12, 3, tzinfo=UTC))
    acts.ensure_rendered(letter, now=datetime(2026, 12, 4, tzinfo=UTC))
    assert (letter.storage_key, letter.sha256) == (key, sha)
    assert acts.pdf_of(letter) == pdf
    assert acts.render_pending(now=datetime(2026, 12, 4, tzinfo=UTC)) == 1  # the acknowledgment
    assert acts.render_pending(now=datetime(2026, 12, 4, tzinfo=UTC)) == 0
    session.refresh(letter)
    assert (letter.storage_key, letter.sha256, acts.pdf_of(letter)) == (key, sha, pdf)
    [message] = outbox(dossier, "grant")
    assert message.context["amount"] == "3\u00a0980,80\u00a0€"
    assert message.context["act"]["path"] == f"/actes/{letter.id}/pdf"


def test_a_tampered_file_is_not_served_as_the_act(session):
    letter = acts_of(factories.dossier("received"), "acknowledgment")[0]
    rendered(letter)
    from instruction.storage.files import path_for

    path_for(letter.storage_key).write_bytes(b"%PDF-1.4 forged")
    with pytest.raises(RuntimeError):
        acts.pdf_of(letter)


@pytest.mark.parametrize("verb, kind, title", [
    ("refuse", "refusal", "Notification de refus de subvention"),
    ("declare_ineligible", "ineligibility", "Notification d'inéligibilité"),
])
def test_refusal_and_ineligibility_letters_give_the_reason_and_the_recourse(session, verb, kind, title):
    dossier = factories.dossier("eligible")
    getattr(services, verb)(dossier, factories.staff("instructor"), "Projet déjà financé par l'État.",
                            now=datetime(2026, 12, 2, 9, 0, tzinfo=UTC))
    assert dossier.implicit_decision_on is None
    [letter] = acts_of(dossier, kind)
    text = text_of(rendered(letter))
    for mention in (title, "Motif : Projet déjà financé par l'État.", "recours contentieux",
                    "Tribunal administratif de Besançon", "Télérecours citoyens"):
        assert mention in text, mention


def test_a_cancelled_grant_has_its_letter(session):
    dossier = factories.dossier("granted")
    amount = dossier.granted_amount
    services.cancel_grant(dossier, factories.staff("admin"), "Projet abandonné par la commune.",
                          now=datetime(2026, 12, 5, 9, 0, tzinfo=UTC))
    [letter] = acts_of(dossier, "cancellation")
    text = text_of(rendered(letter))
    assert "Notification d'annulation de l'attribution" in text
    assert "Motif : Projet abandonné par la commune." in text
    assert f"subvention de {acts.format_euros(amount).replace(chr(160), ' ')}" in text


def test_applicant_and_staff_download_others_get_404(client, session):
    dossier = factories.dossier("received")
    act = acts_of(dossier, "acknowledgment")[0]
    applicant = factories.applicant_of(dossier.collectivite)
    stranger = factories.user("applicant", collectivite=factories.commune("21002"))
    session.commit()
    factories.log_in(client, stranger)
    assert client.get(f"/actes/{act.id}/pdf").status_code == 404
    assert client.get("/actes/999999/pdf").status_code == 404
    client.post("/deconnexion")
    factories.log_in(client, applicant)
    first = client.get(f"/actes/{act.id}/pdf")
    assert first.status_code == 200 and first.mimetype == "application/pdf"
    assert "attachment" in first.headers["Content-Disposition"]
    session.expire_all()
    stored = session.get(LegalAct, act.id)
    assert hashlib.sha256(first.data).hexdigest() == stored.sha256
    client.post("/deconnexion")
    factories.staff_logged_in(client, session)
    again = client.get(f"/actes/{act.id}/pdf")
    assert again.status_code == 200 and again.data == first.data
    page = client.get(f"/instruction/dossiers/{dossier.id}").get_data(as_text=True)
    assert f"/actes/{act.id}/pdf" in page and "28 janvier 2027" in page


def test_direct_grant_is_refused_when_the_campaign_votes_its_grants(session):
    dossier = factories.dossier("eligible")
    dossier.campaign.grants_need_vote = True
    with pytest.raises(services.ActionConflict, match="commission permanente"):
        services.grant(dossier, factories.staff("instructor"), now=datetime(2026, 12, 2, tzinfo=UTC))
    assert dossier.state == "eligible"


def test_a_withdrawn_dossier_has_no_implicit_decision_date(session):
    dossier = factories.dossier("received")
    services.withdraw(dossier, factories.applicant_of(dossier.collectivite), "Projet abandonné.",
                      now=datetime(2026, 12, 2, tzinfo=UTC))
    assert dossier.implicit_decision_on is None


def test_a_dossier_given_a_later_deadline_gets_the_same_acts(session):
    """The acts read the campaign's parameters: the later deadline an admin granted one dossier
    changes none of what its acts show, nor their dates."""
    dossier = factories.dossier("eligible", aid=2)
    now = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    received = dossier.submitted_at

    def issued() -> list[dict]:
        return [acts.issue_acknowledgment(dossier, received_at=received, completed_at=None, now=now).content,
                acts.issue_grant_letter(dossier, amount=Decimal("3980.80"), now=now).content,
                acts.issue_decision_letter(dossier, "refusal", reason="Budget épuisé", now=now).content,
                {"implicit": acts.implicit_decision_on(dossier, received, None),
                 "due": acts.documents_due_on(dossier, now)}]

    before = issued()
    dossier.extended_deadline_at = dossier.campaign.deadline_at + timedelta(days=30)
    session.flush()
    assert issued() == before
    assert before[1]["campaign"] and before[1]["aid_title"]  # the campaign's title, its aid's
