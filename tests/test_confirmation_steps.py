"""Irreversible steps are confirmed first, without JavaScript (templates/_forms.html
``confirm_step``, a native disclosure): submitting a dossier, removing a document, granting and
recording a payment. The real submit button is inside the step, after the question; the opener is
the step's summary, not a submit button."""

from __future__ import annotations

import html as html_lib
import re

import pytest

from tests import factories
from tests.factories import NOW


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    monkeypatch.setattr("instruction.clock.now", lambda: NOW)


def step(page: str, testid: str | None = None, action: str | None = None) -> str:
    """The <details class="confirm-step"> holding the form (by test id, or by the form's action)."""
    for match in re.finditer(r'<details class="confirm-step".*?</details>', page, re.S):
        block = match.group(0)
        if (testid and f'data-testid="{testid}"' in block) or (action and f'action="{action}"' in block):
            return block
    raise AssertionError(f"no confirmation step {testid or action}")


def test_submitting_and_removing_a_document_are_confirmed(client, session):
    agent = factories.user("applicant", collectivite=factories.commune("21001"))
    dossier = factories.dossier("draft", aid=1, collectivite=agent.collectivite)
    session.commit()
    factories.log_in(client, agent)
    page = html_lib.unescape(client.get(f"/portail/dossiers/{dossier.id}").get_data(as_text=True))
    submit = step(page, testid="submit-step")
    assert re.search(r"<summary class=\"btn btn-primary\">Déposer le dossier</summary>", submit)
    assert "ne sera plus modifiable" in submit
    assert re.search(rf'<form method="post" action="/portail/dossiers/{dossier.id}/deposer"', submit)
    assert '<button class="btn btn-primary" type="submit">Confirmer le dépôt</button>' in submit
    # No other submit button posts to /deposer.
    assert page.count(f'action="/portail/dossiers/{dossier.id}/deposer"') == 1
    document = dossier.lines[0].documents[0]
    remove = step(page, action=f"/portail/dossiers/{dossier.id}/pieces/{document.id}/supprimer")
    assert "<summary" in remove and f"Confirmer le retrait de {document.original_name}" in remove
    assert page.count(f"/pieces/{document.id}/supprimer") == 1


def test_granting_is_confirmed(client, session):
    eligible = factories.dossier("eligible", aid=2)
    factories.staff_logged_in(client, session)
    page = html_lib.unescape(client.get(f"/instruction/dossiers/{eligible.id}").get_data(as_text=True))
    grant = step(page, testid="grant-step")
    assert re.search(r"<summary class=\"btn btn-\w+\">Attribuer la subvention</summary>", grant)
    assert re.search(r'<button class="btn btn-\w+" type="submit">Confirmer l\'attribution</button>', grant)
    assert " open" not in grant.split(">")[0]  # closed until asked


def test_paying_is_confirmed(client, session):
    granted = factories.dossier("granted", aid=2)
    factories.staff_logged_in(client, session, role="finance")
    page = html_lib.unescape(client.get(f"/instruction/dossiers/{granted.id}").get_data(as_text=True))
    payment = step(page, testid="payment-step")
    assert re.search(r'<button class="btn btn-\w+" type="submit">Confirmer le versement</button>', payment)
