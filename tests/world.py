"""One user per role and a real object of each kind, for the authorization matrix and the fuzzing.

Collectivité A is the EPCI every factory uses; B is another EPCI. Every dossier belongs to A, so
the applicant of B must never reach any of them. ``World.values`` gives a value for every URL
argument name (``dossier_id``, ``line_id``…), per subject (the dossier in one state and its
objects): a route whose URL has an argument not listed here makes the matrix fail with a message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from flask.testing import FlaskClient
from sqlalchemy import select

from instruction.accounts import services as accounts
from instruction.accounts.models import User
from instruction.acts import services as legal_acts
from instruction.commission.models import CommissionSession
from instruction.dossiers import services as dossiers_services
from instruction.dossiers.models import Dossier
from instruction.extensions import db
from instruction.notifications.models import Delivery, OutboxMessage
from instruction.payment_requests import services as payment_requests
from instruction.storage.files import path_for
from instruction.teamwork import services as team
from instruction.territory.models import Epci
from tests import factories

ROLES = ("anonymous", "applicant_a", "applicant_b", "instructor", "finance", "admin")
SUBJECTS = ("received", "draft", "incomplete", "granted")


@dataclass
class World:
    users: dict[str, User]
    dossiers: dict[str, Dossier]
    values: dict[str, dict[str, object]] = field(default_factory=dict)

    def url_values(self, subject: str) -> dict[str, object]:
        return self.values[subject]


def build_world(session) -> World:
    """Users of every role and dossiers of A in several states, committed (the test's savepoint)."""
    epci_a = factories.epci()
    epci_b = db.session.scalar(select(Epci).where(Epci.siren != epci_a.siren, Epci.population < 50_000)
                               .order_by(Epci.siren).limit(1))
    users = {
        "applicant_a": factories.user("applicant", collectivite=epci_a),
        "applicant_b": factories.user("applicant", collectivite=epci_b),
        "instructor": factories.user("instructor"),
        "finance": factories.user("finance"),
        "admin": factories.user("admin"),
    }
    session.flush()
    dossiers = {state: factories.dossier(state, collectivite=epci_a) for state in SUBJECTS}
    dossiers_services.record_payment(  # a payment of the granted dossier, to cancel
        dossiers["granted"], users["finance"], amount=Decimal("10.00"), paid_on=factories.NOW.date(),
        reference="MATRICE-1", final=False, now=factories.NOW)
    payment_request = payment_requests.start(dossiers["granted"], users["applicant_a"], "acompte",
                                             now=factories.NOW)  # sent: finance's to pay (390.00)
    expense = payment_requests.add_expense(
        payment_request, users["applicant_a"], category="equipement", label="Serveur", amount_ht=Decimal("1000.00"),
        pack=None, months=None, invoice=("facture.pdf", factories.pdf_bytes()), max_bytes=10**7, now=factories.NOW)
    payment_requests.send(payment_request, users["applicant_a"], attested=True, now=factories.NOW)
    pending = factories.user("applicant", collectivite=epci_a, confirmed=False, approved=False)
    message = OutboxMessage(key=f"world-{pending.id}", kind="dossier_received", dossier=dossiers["received"],
                            context={"reference": dossiers["received"].reference},
                            deliveries=[Delivery(user=users["applicant_a"], email=users["applicant_a"].email)])
    session.add(message)
    commission_session = CommissionSession(campaign=dossiers["received"].campaign, session_on=date(2026, 12, 7),
                                           place="Besançon", created_at=factories.NOW)
    session.add(commission_session)
    session.flush()
    common = {
        "session_id": commission_session.id,  # a session of the commission permanente, not voted
        "user_id": pending.id,  # an account of A waiting for approval
        "delivery_id": message.deliveries[0].id,  # a notification of the applicant of A
        "siren": epci_a.siren,
        "collectivite_id": epci_a.id,
        "campaign_id": dossiers["received"].campaign_id,
        "token": accounts.confirmation_token(pending),
        "reset_token": accounts.reset_token(users["applicant_a"]),
        "invite_token": accounts.invitation_token(users["instructor"]),
        "filename": "app.css",
        "bootstrap_file": "css/bootstrap.min.css",
        "action": "declare_eligible",  # an instructor's action on a received dossier
        "payment_action": "record_payment",  # finance's action on a granted dossier
        "payment_id": dossiers["granted"].payments[0].id,
        "request_id": payment_request.id,  # a payment request of the granted dossier, sent
        "expense_id": expense.id,
        "label_id": team.create_label(users["admin"], "Prêt pour la commission", "success",
                                      now=factories.NOW).id,
        "job_id": _export_of(users["instructor"]),  # an export built by the worker, the instructor's
    }
    values = {}
    for state, dossier in dossiers.items():
        line = dossier.lines[0]
        stored = path_for(line.documents[0].storage_key)
        stored.parent.mkdir(parents=True, exist_ok=True)
        stored.write_bytes(factories.pdf_bytes())
        values[state] = {**common, "dossier_id": dossier.id, "line_id": line.id,
                         "document_id": line.documents[0].id}
        if acts := legal_acts.acts_of(dossier.id):  # its acknowledgment (none for a draft)
            values[state]["act_id"] = acts[0].id
    session.commit()
    return World(users=users, dossiers=dossiers, values=values)


def _export_of(author: User) -> int:
    """An export of every dossier by ``author``, built as the worker builds it (its file ready)."""
    from instruction.backoffice.queries import QueueFilters
    from instruction.exports import services as export_jobs

    job = export_jobs.request_export(author, QueueFilters(tab="tous", role=author.role, user_id=author.id),
                                     "csv", rows_total=0, now=factories.NOW)
    export_jobs.build_export(job.id, now=factories.NOW)
    return job.id


def logged_in_cookies(app, user: User | None) -> dict[str, str]:
    """The cookies of a client logged in as ``user`` through the real login form (none: anonymous)."""
    if user is None:
        return {}
    client = app.test_client()
    factories.log_in(client, user)
    return {name: client.get_cookie(name).value for name in ("session", "remember_token")
            if client.get_cookie(name) is not None}


def client_with(app, cookies: dict[str, str]) -> FlaskClient:
    """A new client carrying ``cookies`` (a request that logs out or sets cookies affects only it)."""
    client = app.test_client()
    for name, value in cookies.items():
        client.set_cookie(name, value)
    return client
