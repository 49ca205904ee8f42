"""The authorization matrix: every route of ``app.url_map`` (endpoint × method) × every role.

Each cell is a real request, by a client logged in through the real form, on real objects of
collectivité A (``tests/world.py``): the applicant of A owns them, the applicant of B must not
reach them, staff see what is submitted. The expected outcome of every cell is written in
``EXPECTED`` below; a route without a row fails ``test_every_route_has_a_row``.

Outcomes: an HTTP status, or ``LOGIN`` for a redirect to the login page that asks to come back
(``/connexion?next=…``, what an anonymous visitor gets on a page that needs an account). Every
cell runs in a savepoint rolled back after it, so cells do not see each other's changes.

Adding a route? Add its row: ``"METHOD endpoint": Row(anonymous, applicant_a, applicant_b,
instructor, finance, admin)`` with what each role must get, ``on=`` the dossier it acts on (one of
``world.SUBJECTS``; default: a received dossier of A), ``data=`` a valid form (the cells then show
success, 302, where the role may act), ``args=`` to take a URL argument from another world value.
A variant row for the same route is keyed ``"METHOD endpoint on <subject>"``.
"""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO
from secrets import token_urlsafe
from typing import NamedTuple
from urllib.parse import urlsplit

import pytest
from flask import url_for
from sqlalchemy import select
from werkzeug.routing import BuildError

from instruction.accounts.models import User
from tests import factories
from tests.world import ROLES, SUBJECTS, build_world, client_with, logged_in_cookies

LOGIN = "login"


class Row(NamedTuple):
    anonymous: int | str
    applicant_a: int | str
    applicant_b: int | str
    instructor: int | str
    finance: int | str
    admin: int | str
    on: str = "received"
    data: dict | Callable[[], dict] | None = None
    args: dict[str, str] | None = None  # URL argument -> name of the world value to use


def _everyone(outcome) -> tuple:
    return (outcome,) * 6


PUBLIC_PAGE = Row(200, 302, 302, 302, 302, 302)  # a logged-in user goes to their home page
STAFF_PAGE = Row(LOGIN, 403, 403, 200, 200, 200)
ADMIN_ONLY = Row(LOGIN, 403, 403, 403, 403, 200)
COLLEAGUE_DECISION = dict(anonymous=LOGIN, applicant_a=302, applicant_b=404, instructor=403, finance=403, admin=403)
# Editing a draft of A: staff do not see drafts (404), as B does not.
DRAFT_EDIT = dict(anonymous=LOGIN, applicant_a=302, applicant_b=404, instructor=404, finance=404, admin=404,
                  on="draft")
# Acting as the applicant on a submitted dossier of A: staff see it but may not act (403).
APPLICANT_ACT = dict(anonymous=LOGIN, applicant_a=302, applicant_b=404, instructor=403, finance=403, admin=403)

LINE = {"category": "equipement", "label": "Onduleur", "amount_ht": "1 500,00"}


def _pdf() -> dict:
    return {"files": (BytesIO(factories.pdf_bytes()), "facture.pdf")}


def _label() -> dict:
    from instruction.teamwork.models import Label

    return {"label_id": str(factories.db.session.scalar(select(Label.id).order_by(Label.id).limit(1)))}


def _assignee() -> dict:
    return {"assignee_id": str(factories.db.session.scalar(
        select(User.id).where(User.role == "instructor").order_by(User.id).limit(1)))}


def _bulk() -> dict:
    from instruction.dossiers.models import Dossier

    received = factories.db.session.scalar(select(Dossier.id).where(Dossier.state == "received").limit(1))
    return {"dossiers": [str(received)], "operation": _label()["label_id"].join(("label:", ""))}


# fmt: off
EXPECTED: dict[str, Row] = {
    #                                       anonymous applicant_a applicant_b instructor finance admin
    "GET static":                       Row(200,      200,        200,        200,       200,    200),
    "GET bootstrap.static":             Row(*_everyone(200), args={"filename": "bootstrap_file"}),
    "GET main.home":                    Row(LOGIN,    200,        200,        200,       200,    200),
    # Health check for the containers: no login; 200 while the database answers (embedded broker).
    "GET health.status":                Row(*_everyone(200)),

    # --- accounts
    # The legal pages: public, for everyone, signed in or not.
    "GET legal.legal_notice":           Row(*_everyone(200)),
    "GET legal.privacy_notice":         Row(*_everyone(200)),
    "GET legal.accessibility_statement": Row(*_everyone(200)),
    "GET auth.login":                   PUBLIC_PAGE,
    "POST auth.login":                  Row(401,      302,        302,        302,       302,    302,
                                            data={"email": "inconnu@exemple.fr", "password": "pas le bon"}),
    "POST auth.logout":                 Row(LOGIN,    302,        302,        302,       302,    302),
    "GET auth.register":                PUBLIC_PAGE,
    "POST auth.register":               Row(400,      302,        302,        302,       302,    302),
    "GET auth.confirm":                 Row(*_everyone(302)),  # the signed link is the credential
    "POST auth.resend_confirmation":    Row(*_everyone(302), data={"email": "inconnu@exemple.fr"}),
    "GET auth.forgot_password":         Row(*_everyone(200)),
    "POST auth.forgot_password":        Row(*_everyone(302), data={"email": "inconnu@exemple.fr"}),
    "GET auth.reset_password":          Row(*_everyone(200), args={"token": "reset_token"}),
    "POST auth.reset_password":         Row(*_everyone(400), args={"token": "reset_token"}),
    "GET auth.accept_invitation":       Row(*_everyone(200), args={"token": "invite_token"}),
    "POST auth.accept_invitation":      Row(*_everyone(400), args={"token": "invite_token"}),
    "POST auth.approve_access":         Row(**COLLEAGUE_DECISION),
    "POST auth.refuse_access":          Row(**COLLEAGUE_DECISION, data={"reason": "Personne inconnue du service."}),
    "GET account.index":                Row(LOGIN,    200,        200,        200,       200,    200),
    "POST account.change_password":     Row(LOGIN,    400,        400,        400,       400,    400),
    "POST account.end_all_sessions":    Row(LOGIN,    302,        302,        302,       302,    302),
    # without a login waiting for its second factor, both go back to the login page
    "GET auth.second_factor":           Row(*_everyone(302)),
    "POST auth.second_factor":          Row(*_everyone(302)),
    "GET auth.enrol_second_factor":     Row(*_everyone(302)),
    "POST auth.enrol_second_factor":    Row(*_everyone(302)),
    # staff only; the admins of the world have it on already (mandatory), so enrolling is moot
    "GET account.enrol":                Row(LOGIN,    403,        403,        200,       200,    302),
    "POST account.enrol":               Row(LOGIN,    403,        403,        400,       400,    302),
    "POST account.disable":             Row(LOGIN,    403,        403,        400,       400,    400),
    "POST account.recovery_codes":      Row(LOGIN,    403,        403,        400,       400,    400),

    # --- administration
    "GET admin.accounts":               ADMIN_ONLY,
    "GET admin.home":                   ADMIN_ONLY,
    "GET admin.people_list":            ADMIN_ONLY,
    "GET admin.audit_log":              ADMIN_ONLY,
    "POST admin.invite":                Row(LOGIN,    403,        403,        403,       403,    400),
    "POST admin.change_role":           Row(LOGIN,    403,        403,        403,       403,    400,
                                            data={"role": "finance"}),  # an applicant keeps their role
    "POST admin.deactivate":            Row(LOGIN,    403,        403,        403,       403,    302),
    "GET admin.export_personal_data":   ADMIN_ONLY,
    "POST admin.erase_personal_data":   Row(LOGIN,    403,        403,        403,       403,    302),
    "POST admin.reactivate":            Row(LOGIN,    403,        403,        403,       403,    400),  # active
    "POST admin.resend_invitation":     Row(LOGIN,    403,        403,        403,       403,    400),  # not invited
    "GET admin.territory_home":         ADMIN_ONLY,
    "GET admin.collectivite":           ADMIN_ONLY,
    "GET admin.new_sivos":              ADMIN_ONLY,
    "POST admin.new_sivos":             Row(LOGIN,    403,        403,        403,       403,    400),
    "GET admin.edit_sivos":             Row(LOGIN,    403,        403,        403,       403,    404),  # an EPCI
    "POST admin.edit_sivos":            Row(LOGIN,    403,        403,        403,       403,    404),
    "POST admin.import_sivos":          Row(LOGIN,    403,        403,        403,       403,    400),
    "POST admin.change_ville_centre":   Row(LOGIN,    403,        403,        403,       403,    400),
    "POST admin.attach_agent":          Row(LOGIN,    403,        403,        403,       403,    400),
    "POST admin.detach_agent":          Row(LOGIN,    403,        403,        403,       403,    302),
    "POST admin.territory_preview":     Row(LOGIN,    403,        403,        403,       403,    400),
    "POST admin.territory_apply":       Row(LOGIN,    403,        403,        403,       403,    400),
    "GET admin.campaigns":              ADMIN_ONLY,
    "GET admin.campaign":               ADMIN_ONLY,
    "POST admin.copy_campaign":         Row(LOGIN,    403,        403,        403,       403,    400),
    "POST admin.open_campaign":         Row(LOGIN,    403,        403,        403,       403,    400),  # open already
    "POST admin.close_campaign":        Row(LOGIN,    403,        403,        403,       403,    302),
    "POST admin.extend_deadline":       Row(LOGIN,    403,        403,        403,       403,    400),
    "GET admin.settings_page":          ADMIN_ONLY,
    "POST admin.settings_page":         Row(LOGIN,    403,        403,        403,       403,    400),
    "POST admin.approve":               Row(LOGIN,    403,        403,        403,       403,    302),
    "POST admin.refuse":                Row(LOGIN,    403,        403,        403,       403,    302,
                                            data={"reason": "Personne inconnue du service."}),

    # --- back-office
    "GET backoffice.queue":             STAFF_PAGE,
    "GET backoffice.dossier":           STAFF_PAGE,
    "GET backoffice.dossier on draft":  Row(LOGIN,    403,        403,        404,       404,    404, on="draft"),
    "POST backoffice.act":              Row(LOGIN,    403,        403,        302,       403,    302),
    "POST backoffice.act on granted":   Row(LOGIN,    403,        403,        403,       302,    302, on="granted",
                                            args={"action": "payment_action"},
                                            data=lambda: {"amount": "100,00", "paid_on": "28/11/2026",
                                                          "reference": "Mandat 42", "token": token_urlsafe(24)}),
    "POST backoffice.cancel_payment":   Row(LOGIN,    403,        403,        403,       302,    302, on="granted",
                                            args={"payment_id": "payment_id"},
                                            data=lambda: {"reason": "Saisi par erreur", "token": token_urlsafe(24)}),
    "GET backoffice.epci_envelopes":    STAFF_PAGE,

    # --- payment requests (the granted dossier of A has an acompte sent, 390.00 € payable)
    "GET payment_requests.page on granted": Row(LOGIN, 200,      404,        403,       403,    403, on="granted"),
    "POST payment_requests.start on granted": Row(LOGIN, 409,    404,        403,       403,    403, on="granted",
                                            data={"kind": "solde"}),
    "POST payment_requests.add_expense on granted": Row(LOGIN, 409, 404,     403,       403,    403, on="granted",
                                            data={"category": "equipement", "label": "Écran", "amount_ht": "100"}),
    "POST payment_requests.remove_expense on granted": Row(LOGIN, 409, 404,  403,       403,    403, on="granted"),
    "POST payment_requests.send on granted": Row(LOGIN, 302,     404,        403,       403,    403, on="granted",
                                            data={"attest": "y"}),
    "GET payment_requests_finance.request_page on granted": Row(LOGIN, 403, 403, 200,   200,    200, on="granted"),
    "POST payment_requests_finance.pay on granted": Row(LOGIN, 403, 403,     403,       302,    302, on="granted",
                                            data=lambda: {"amount": "390,00", "paid_on": "28/11/2026",
                                                          "reference": "Mandat 43", "token": token_urlsafe(24)}),
    # an acompte cannot be settled at 0,00 € (400): the roles that may try get that far
    "POST payment_requests_finance.settle on granted": Row(LOGIN, 403, 403,  403,       400,    400, on="granted",
                                            data=lambda: {"token": token_urlsafe(24)}),
    "POST payment_requests_finance.send_back on granted": Row(LOGIN, 403, 403, 403,     302,    302, on="granted",
                                            data={"message": "La facture n'est pas acquittée."}),
    "GET backoffice.export_csv":        Row(LOGIN,    404,        404,        200,       200,    200),
    "GET backoffice.export_xlsx":       Row(LOGIN,    404,        404,        200,       200,    200),
    # exports built by the worker: the world's export is the instructor's, nobody else's (404)
    "GET exports.index":                Row(LOGIN,    404,        404,        200,       200,    200),
    "POST exports.request_export":      Row(LOGIN,    404,        404,        302,       302,    302,
                                            data={"format": "csv", "onglet": "tous"}),
    "GET exports.show":                 Row(LOGIN,    404,        404,        200,       404,    404),
    "GET exports.progress":             Row(LOGIN,    404,        404,        200,       404,    404),
    "GET exports.download":             Row(LOGIN,    404,        404,        200,       404,    404),
    "GET backoffice.epci_statement_xlsx": Row(LOGIN,  404,        404,        200,       200,    200),
    "GET dashboard.index":              Row(LOGIN,    404,        404,        200,       200,    200),

    # --- legal acts (acknowledgments, decision letters)
    "GET acts.download":                Row(LOGIN,    200,        404,        200,       200,    200),

    # --- commission permanente (the world's campaign votes nothing: no session can be created)
    "GET commission.sessions":          STAFF_PAGE,
    "POST commission.sessions":         Row(LOGIN,    403,        403,        400,       400,    400),
    "GET commission.session":           STAFF_PAGE,
    "POST commission.propose":          Row(LOGIN,    403,        403,        400,       400,    400),
    "POST commission.record_vote":      Row(LOGIN,    403,        403,        403,       403,    400),
    "POST commission.grant_adopted":    Row(LOGIN,    403,        403,        403,       403,    409),
    "GET commission.agenda_as_pdf":     STAFF_PAGE,
    "GET commission.agenda_as_xlsx":    STAFF_PAGE,

    # --- documents
    "GET documents.download":           Row(LOGIN,    200,        404,        200,       200,    200),
    "GET documents.download on draft":  Row(LOGIN,    200,        404,        404,       404,    404, on="draft"),
    "GET documents.preview":            Row(LOGIN,    200,        404,        200,       200,    200),
    "GET documents.dossier_archive":    Row(LOGIN,    200,        404,        200,       200,    200),
    "GET documents.dossier_archive on draft": Row(LOGIN, 200,     404,        404,       404,    404, on="draft"),

    # --- notifications (the delivery is the applicant of A's)
    "GET notifications.index":          Row(LOGIN,    200,        200,        200,       200,    200),
    "POST notifications.follow":        Row(LOGIN,    302,        404,        404,       404,    404),
    "POST notifications.mark_read":     Row(LOGIN,    302,        404,        404,       404,    404),
    "POST notifications.mark_all_read": Row(LOGIN,    302,        302,        302,       302,    302),

    # --- portal
    "GET portal.index":                 Row(LOGIN,    200,        200,        302,       302,    302),
    "POST portal.create":               Row(LOGIN,    302,        302,        403,       403,    403,
                                            data={"aid_number": "2", "client_token": "matrice-authz-0123456789abcdefghi"}),
    "GET portal.dossier":               Row(LOGIN,    200,        404,        200,       200,    200),
    "GET portal.dossier on draft":      Row(LOGIN,    200,        404,        404,       404,    404, on="draft"),
    "GET portal.estimation":            Row(LOGIN,    200,        404,        200,       200,    200),
    "POST portal.rename":               Row(**DRAFT_EDIT, data={"title": "Nouvel intitulé"}),
    "POST portal.rename on received":   Row(**{**APPLICANT_ACT, "applicant_a": 409}, on="received",
                                            data={"title": "Nouvel intitulé"}),  # frozen once submitted
    "POST portal.add_line":             Row(**DRAFT_EDIT, data=LINE),
    "GET portal.edit_line":             Row(LOGIN,    200,        404,        404,       404,    404, on="draft"),
    "POST portal.edit_line":            Row(**DRAFT_EDIT, data=LINE),
    "POST portal.remove_line":          Row(**DRAFT_EDIT),
    "POST portal.upload":               Row(**DRAFT_EDIT, data=_pdf),
    "POST portal.remove_document":      Row(**DRAFT_EDIT),
    "POST portal.submit":               Row(**DRAFT_EDIT),
    "POST portal.resubmit":             Row(**{**APPLICANT_ACT, "on": "incomplete"},
                                            data={"message": "Voici la pièce demandée."}),
    "POST portal.withdraw":             Row(**APPLICANT_ACT, data={"reason": "Projet abandonné."}),
    "POST portal.delete_draft":         Row(LOGIN,    302,        404,        403,       403,    403, on="draft"),
    "POST portal.delete_draft on received": Row(LOGIN, 409,       404,        403,       403,    403),

    # --- teamwork: the thread, notes, labels, assignment, following, preferences
    "POST portal_thread.post_applicant_message": Row(LOGIN, 302,  404,        403,       403,    403,
                                                     data={"body": "Bonjour"}),
    "POST portal_thread.post_applicant_message on draft": Row(LOGIN, 403, 404, 404,      404,    404, on="draft",
                                                              data={"body": "Bonjour"}),
    "POST teamwork.post_staff_message": Row(LOGIN, 403,       403,        302,       302,    302,
                                            data={"body": "Bonjour"}),
    "POST teamwork.add_note":           Row(LOGIN,    403,        403,        302,       302,    302, data={"body": "Note"}),
    "POST teamwork.add_label":          Row(LOGIN,    403,        403,        302,       403,    302, data=_label),
    "POST teamwork.remove_label":       Row(LOGIN,    403,        403,        302,       403,    302),
    "POST teamwork.assign":             Row(LOGIN,    403,        403,        302,       403,    302, data=_assignee),
    "POST teamwork.follow":             Row(LOGIN,    403,        403,        302,       302,    302),
    "POST teamwork.unfollow":           Row(LOGIN,    403,        403,        302,       302,    302),
    "POST teamwork.bulk":               Row(LOGIN,    403,        403,        302,       403,    302, data=_bulk),
    "GET teamwork.preferences":         STAFF_PAGE,
    "POST teamwork.preferences":        Row(LOGIN,    403,        403,        302,       302,    302,
                                            data={"message_emails": "digest"}),
    "GET labels.labels":                ADMIN_ONLY,
    "POST labels.labels":               Row(LOGIN,    403,        403,        403,       403,    302,
                                            data={"name": "Urgent", "colour": "danger"}),
    "POST labels.update_label":         Row(LOGIN,    403,        403,        403,       403,    302,
                                            data={"name": "Commission de mars", "colour": "info"}),
    "POST labels.delete_label":         Row(LOGIN,    403,        403,        403,       403,    302),
}
# fmt: on

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def _route_key(key: str) -> str:
    return key.split(" on ", 1)[0]


def _routes(app) -> dict[str, str]:
    """``"METHOD endpoint"`` -> URL rule, for every route of the application."""
    return {f"{method} {rule.endpoint}": rule.rule
            for rule in app.url_map.iter_rules() for method in sorted(rule.methods - IGNORED_METHODS)}


def test_every_route_has_a_row(app):
    routes = _routes(app)
    declared = {_route_key(key) for key in EXPECTED}
    missing = sorted(set(routes) - declared)
    stale = sorted(declared - set(routes))
    message = []
    if missing:
        message.append(
            "These routes have no row in EXPECTED (tests/test_authz_matrix.py). Add one per route, with "
            "what each role must get (status code, or LOGIN for a redirect to the login page), e.g.:\n"
            + "\n".join(f'    "{key}": Row(anonymous=LOGIN, applicant_a=..., applicant_b=..., instructor=..., '
                        f'finance=..., admin=...),  # {routes[key]}' for key in missing)
            + "\nSee the module's docstring for on= (which dossier), data= (a valid form) and args=.")
    if stale:
        message.append("These rows name routes that no longer exist; remove them: " + ", ".join(stale))
    assert not message, "\n\n".join(message)


def test_rows_are_well_formed():
    for key, row in EXPECTED.items():
        assert row.on in SUBJECTS, f"{key}: on={row.on!r} is not one of {SUBJECTS}"
        for outcome in row[:6]:
            assert outcome == LOGIN or isinstance(outcome, int), f"{key}: {outcome!r}"
        if " on " in key:
            assert key.split(" on ", 1)[1] == row.on, f"{key}: the key names on={row.on!r}"


def outcome_of(response) -> int | str:
    if response.status_code in (301, 302, 303, 307, 308):
        target = urlsplit(response.location)
        if target.path == "/connexion" and "next=" in target.query:
            return LOGIN
    return response.status_code


def _url(app, world, key: str, row: Row) -> str:
    method, endpoint = _route_key(key).split(" ")
    rule = next(r for r in app.url_map.iter_rules(endpoint))
    values = world.url_values(row.on)
    arguments = {}
    for name in rule.arguments:
        source = (row.args or {}).get(name, name)
        assert source in values, (
            f"{key}: no value for the URL argument <{name}> in tests/world.py (build_world's `common` "
            "or per-subject values): add a real object of that kind there.")
        arguments[name] = values[source]
    with app.test_request_context():
        try:
            return url_for(endpoint, **arguments)
        except BuildError as error:  # pragma: no cover - a wrong world value
            pytest.fail(f"{key}: {error}")


@pytest.fixture
def matrix_world(app, session, fresh_limiter, monkeypatch):
    monkeypatch.setattr("instruction.clock.now", lambda: factories.NOW)
    return build_world(session)


@pytest.mark.parametrize("role", ROLES)
def test_matrix(app, session, matrix_world, role):
    world = matrix_world
    cookies = logged_in_cookies(app, world.users.get(role))
    session.commit()
    wrong = []
    for key, row in EXPECTED.items():
        expected = row[ROLES.index(role)]
        method = _route_key(key).split(" ")[0]
        url = _url(app, world, key, row)
        data = row.data() if callable(row.data) else row.data
        savepoint = session.begin_nested()
        session.connection()  # the SAVEPOINT now, before the request's own
        try:
            response = client_with(app, cookies).open(url, method=method, data=data)
            got = outcome_of(response)
        except Exception as error:  # noqa: BLE001 - a 500 is a wrong cell like any other
            got = f"500 ({type(error).__name__}: {error})"
        finally:
            savepoint.rollback()
            session.expire_all()
        if got != expected:
            wrong.append(f"{key} ({method} {url}): expected {expected}, got {got}")
    assert not wrong, f"As {role}:\n" + "\n".join(wrong)
