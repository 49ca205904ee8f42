"""The error summary of every form (templates/_forms.html ``error_summary``): after a failed
submit it is at the top, focusable (tabindex=-1, focused by static/forms.js, role=alert), and links
to each field in error; each field is tied to its error (aria-invalid, aria-describedby naming
elements that exist). Checked on the portal's line form, the back office's actions and notes, the
message thread and the admin's forms, through HTTP; the focus itself in Chromium
(tests/test_a11y.py ``test_the_error_summary_is_focused_and_leads_to_the_field``)."""

from __future__ import annotations

import html as html_lib
import re
import secrets

import pytest

from tests import factories
from tests.factories import NOW


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    monkeypatch.setattr("instruction.clock.now", lambda: NOW)


def body(response) -> str:
    return html_lib.unescape(response.get_data(as_text=True))


def summary_of(page: str) -> str:
    match = re.search(r'<div class="alert alert-danger error-summary"[^>]*>.*?</div>', page, re.S)
    assert match, "no error summary on the page"
    return match.group(0)


def tag_with_id(page: str, element_id: str) -> str:
    match = re.search(rf'<(input|textarea|select)\b[^>]*\bid="{re.escape(element_id)}"[^>]*>', page)
    assert match, f"no control with id {element_id}"
    return match.group(0)


def assert_tied(page: str, element_id: str) -> None:
    """The control is marked invalid and described by its error, which exists and is not empty."""
    control = tag_with_id(page, element_id)
    assert 'aria-invalid="true"' in control, control
    described = re.search(r'aria-describedby="([^"]+)"', control).group(1).split()
    assert f"{element_id}-erreur" in described, control
    for target in described:
        assert re.search(rf'id="{re.escape(target)}"[^>]*>[^<\s]', page), f"{target} is not on the page"


def links_of(summary: str) -> list[str]:
    return re.findall(r'<a class="alert-link" href="#([^"]+)"', summary)


def test_the_portal_line_form_summarises_links_and_ties_each_error(client, session):
    agent = factories.user("applicant", collectivite=factories.commune("21001"))
    dossier = factories.dossier("draft", aid=1, collectivite=agent.collectivite, lines=[])
    session.commit()
    factories.log_in(client, agent)
    response = client.post(f"/portail/dossiers/{dossier.id}/depenses",
                           data={"category": "", "label": "", "amount_ht": "douze euros"})
    assert response.status_code == 400
    page = body(response)
    summary = summary_of(page)
    assert 'role="alert"' in summary and 'tabindex="-1"' in summary and "data-error-summary" in summary
    links = links_of(summary)
    assert set(links) == {"category", "amount_ht", "label", "pack"} and len(links) == 4
    assert "Le formulaire contient 4 erreurs :" in summary
    for field_id in links_of(summary):
        assert_tied(page, field_id)
    # The summary comes before the form it summarises.
    assert page.index("data-error-summary") < page.index(f'action="/portail/dossiers/{dossier.id}/depenses"')


def test_a_back_office_action_without_its_reason_links_to_the_reason(client, session):
    dossier = factories.dossier("received", aid=2)
    factories.staff_logged_in(client, session)
    response = client.post(f"/instruction/dossiers/{dossier.id}/actions/refuse", data={"reason": ""})
    assert response.status_code == 400
    page = body(response)
    summary = summary_of(page)
    assert links_of(summary) == ["refuse-reason"]
    assert_tied(page, "refuse-reason")
    # The field is the refusal's, not another action's reason.
    assert 'for="refuse-reason"' in page


def test_a_grant_above_the_computed_amount_links_to_the_amount(client, session):
    dossier = factories.dossier("eligible", aid=2)
    factories.staff_logged_in(client, session)
    response = client.post(f"/instruction/dossiers/{dossier.id}/actions/grant",
                           data={"amount": "pas un montant", "token": secrets.token_urlsafe(24)})
    assert response.status_code == 400
    page = body(response)
    assert links_of(summary_of(page)) == ["grant-amount"]
    assert_tied(page, "grant-amount")
    control = tag_with_id(page, "grant-amount")
    assert "grant-amount-help" in control  # the help text stays tied too
    # The grant's confirmation step is open again, with the amount kept.
    assert re.search(r'<details class="confirm-step" data-testid="grant-step" open>', page)


def test_an_empty_payment_links_to_each_missing_field(client, session):
    dossier = factories.dossier("granted", aid=2)
    factories.staff_logged_in(client, session, role="finance")
    response = client.post(f"/instruction/dossiers/{dossier.id}/actions/record_payment",
                           data={"amount": "", "paid_on": "", "reference": "", "token": secrets.token_urlsafe(24)})
    assert response.status_code == 400
    page = body(response)
    links = links_of(summary_of(page))
    assert set(links) == {"payment-amount", "payment-date", "payment-reference"}
    for field_id in links:
        assert_tied(page, field_id)


def test_an_empty_note_links_to_the_note_field(client, session):
    dossier = factories.dossier("received", aid=2)
    factories.staff_logged_in(client, session)
    response = client.post(f"/instruction/dossiers/{dossier.id}/notes", data={"body": ""})
    assert response.status_code == 400
    page = body(response)
    assert links_of(summary_of(page)) == ["note-body"]
    assert_tied(page, "note-body")


def test_a_too_long_message_of_the_applicant_links_to_the_message_field(client, session):
    agent = factories.user("applicant", collectivite=factories.commune("21001"))
    dossier = factories.dossier("received", aid=1, collectivite=agent.collectivite)
    session.commit()
    factories.log_in(client, agent)
    response = client.post(f"/portail/dossiers/{dossier.id}/messages", data={"body": "a" * 10_001})
    assert response.status_code == 400
    page = body(response)
    assert links_of(summary_of(page)) == ["message-body"]
    assert_tied(page, "message-body")
    # An empty message is the service's refusal: summarised as text, in the same focusable summary.
    summary = summary_of(body(client.post(f"/portail/dossiers/{dossier.id}/messages", data={"body": ""})))
    assert "Écrivez un message ou joignez un fichier." in summary and 'tabindex="-1"' in summary


def test_a_refusal_without_field_is_summarised_as_a_message(client, session):
    """A service's refusal (no field in error) is in the same focusable summary, as text."""
    dossier = factories.dossier("draft", aid=1, lines=[])
    agent = dossier.collectivite.users[0] if hasattr(dossier.collectivite, "users") else None
    agent = agent or factories.applicant_of(dossier.collectivite)
    session.commit()
    factories.log_in(client, agent)
    response = client.post(f"/portail/dossiers/{dossier.id}/deposer")
    assert response.status_code in (400, 409)
    summary = summary_of(body(response))
    assert "data-error-summary" in summary and links_of(summary) == []
    assert re.search(r'<li data-testid="error">[^<]+</li>', summary)


def test_the_admin_forms_use_the_same_summary(client, session):
    admin = factories.user("admin")
    session.commit()
    factories.log_in(client, admin)
    response = client.post("/administration/personnes/inviter", data={"full_name": "", "email": "pas-une-adresse", "role": "instructor"})
    assert response.status_code == 400
    page = body(response)
    links = links_of(summary_of(page))
    assert links and all(tag_with_id(page, field_id) for field_id in links)
    for field_id in links:
        assert_tied(page, field_id)


def test_a_page_without_error_has_no_summary(client, session):
    agent = factories.user("applicant", collectivite=factories.commune("21001"))
    dossier = factories.dossier("draft", aid=1, collectivite=agent.collectivite)
    session.commit()
    factories.log_in(client, agent)
    page = body(client.get(f"/portail/dossiers/{dossier.id}"))
    assert "data-error-summary" not in page and 'aria-invalid="true"' not in page
