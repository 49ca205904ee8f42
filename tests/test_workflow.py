"""The lifecycle: every transition × every role, the guards, the audit trail and the outbox."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from instruction.dossiers import services
from instruction.dossiers.models import AuditEvent, Document, Envelope, PackGrant
from instruction.dossiers.workflow import SYSTEM, TRANSITIONS, Context, available_actions
from instruction.notifications.models import OutboxMessage
from instruction.payment_requests import services as payment_requests
from instruction.payment_requests.models import PaymentRequest, RealisedExpense
from tests import factories
from tests.factories import NOW

ROLES = ("applicant", "instructor", "finance", "admin", SYSTEM)
STAFF = {"instructor", "admin"}
VISIBLE = {"received", "incomplete", "eligible", "granted", "paid", "ineligible", "refused",
           "withdrawn", "expired"}
# THE PERMISSION MATRIX, written by hand from DESIGN §3 (never read from TRANSITIONS): each verb,
# the roles that may apply it, the states it leaves from, the state it reaches (None: stays).
# Every other role gets 403; from every other state, an allowed role gets 409.
EXPECTED = {
    "submit": ({"applicant"}, {"draft"}, "received"),
    "request_documents": (STAFF, {"received", "eligible"}, "incomplete"),
    "resubmit": ({"applicant"}, {"incomplete"}, "received"),
    "declare_eligible": (STAFF, {"received"}, "eligible"),
    "declare_ineligible": (STAFF, {"received", "eligible"}, "ineligible"),
    "grant": (STAFF, {"eligible"}, "granted"),
    "refuse": (STAFF, {"received", "eligible"}, "refused"),
    "record_payment": ({"finance", "admin"}, {"granted"}, "granted"),
    "record_final_payment": ({"finance", "admin"}, {"granted"}, "paid"),
    "withdraw": ({"applicant"}, {"received", "incomplete", "eligible"}, "withdrawn"),
    "expire": ({SYSTEM, "admin"}, {"draft"}, "expired"),
    "cancel_grant": ({"admin"}, {"granted"}, "eligible"),
    "reopen": ({"admin"}, {"ineligible", "refused"}, "received"),
    "assign": (STAFF, VISIBLE, None),
    "extend_deadline": ({"admin"}, {"draft", "expired"}, "draft"),
    "cancel_payment": ({"finance", "admin"}, {"granted", "paid"}, "granted"),
    # Payment requests (the state stays) and the caducité of a balance not asked in time.
    "send_payment_request": ({"applicant"}, {"granted"}, None),
    "return_payment_request": ({"finance", "admin"}, {"granted"}, None),
    "lapse": ({SYSTEM}, {"granted"}, "expired"),
    "lapse_after_instalments": ({SYSTEM}, {"granted"}, "paid"),
}
ALL_STATES = ("draft", "received", "incomplete", "eligible", "granted", "paid", "ineligible",
              "refused", "withdrawn", "expired")
AFTER_DEADLINE = datetime(2027, 7, 1, 8, 0, tzinfo=UTC)


AFTER_BALANCE_LIMIT = datetime(2028, 12, 1, 10, 0, tzinfo=UTC)  # granted on NOW: last day 28 November 2028


def _payment_request(dossier, status: str):
    """A request of the dossier, written directly (whatever the state): one paid invoice of 1,000 €."""
    request = PaymentRequest(dossier=dossier, kind="solde", status=status, created_at=NOW)
    if status != "draft":
        request.first_sent_at = request.sent_at = request.attested_at = NOW
    invoice = Document(dossier=dossier, original_name="facture.pdf", storage_key=secrets.token_hex(16),
                       size_bytes=1234, content_type="application/pdf", sha256="0" * 64, uploaded_at=NOW)
    request.expenses = [RealisedExpense(category="equipement", label="Serveur", amount_ht=Decimal("1000.00"),
                                        invoice=invoice)]
    factories.db.session.add(request)
    factories.db.session.flush()
    return request


def call(action, dossier, actor, now=NOW):
    if action == "send_payment_request":
        return payment_requests.send(_payment_request(dossier, "draft"), actor, attested=True, now=now)
    if action == "return_payment_request":
        return payment_requests.return_to_applicant(_payment_request(dossier, "sent"), actor, "À corriger",
                                                    now=now)
    if action in ("lapse", "lapse_after_instalments"):
        if action == "lapse_after_instalments" and dossier.state == "granted" and not dossier.payments:
            services.record_payment(dossier, factories.staff("finance"), amount=Decimal("100.00"),
                                    paid_on=date(2026, 11, 28), reference="ACOMPTE-1", final=False, now=now)
        return payment_requests.lapse(dossier, actor, now=AFTER_BALANCE_LIMIT)
    if action in ("request_documents", "declare_ineligible", "refuse", "withdraw", "cancel_grant", "reopen"):
        return getattr(services, action)(dossier, actor, "Motif de test", now=now)
    if action == "resubmit":
        return services.resubmit(dossier, actor, "Voici la pièce.", now=now)
    if action == "cancel_payment":
        if dossier.state == "granted" and not dossier.payments:  # a payment to cancel
            services.record_payment(dossier, factories.staff("finance"), amount=Decimal("100.00"),
                                    paid_on=date(2026, 11, 28), reference="MANDAT-43", final=False, now=now)
        payment_id = dossier.payments[-1].id if dossier.payments else 0
        return services.cancel_payment(dossier, payment_id, actor, "Saisi par erreur", now=now)
    if action in ("record_payment", "record_final_payment"):
        amount = Decimal("100.00") if action == "record_payment" else dossier.granted_amount or Decimal("100.00")
        return services.record_payment(dossier, actor, amount=amount, paid_on=date(2026, 11, 28),
                                       reference="MANDAT-42", final=action == "record_final_payment", now=now)
    if action == "expire":
        return services.expire(dossier, actor, now=AFTER_DEADLINE)
    if action == "extend_deadline":
        return services.extend_deadline(dossier, actor, datetime(2027, 7, 16, 22, 0, tzinfo=UTC),
                                        "Motif de test", now=AFTER_DEADLINE)
    return getattr(services, action)(dossier, actor, now=now)


def actor_for(role, dossier):
    if role == SYSTEM:
        return None
    if role == "applicant":
        return factories.applicant_of(dossier.collectivite)
    return factories.staff(role)


def test_the_matrix_names_every_verb_of_the_table():
    assert set(EXPECTED) == set(TRANSITIONS)


def _outcome(action, dossier, role):
    """What applying ``action`` as ``role`` does: "allowed", or the refusal's status."""
    actor = actor_for(role, dossier)
    actor_id = actor.id if actor else None
    try:
        with factories.db.session.begin_nested():
            before, events = dossier.state, len(dossier.events)
            event = call(action, dossier, actor)
            raise _Applied(before, events, event)
    except _Applied as applied:
        target = EXPECTED[action][2] or applied.before
        assert (applied.event.action, applied.event.from_state, applied.event.to_state) == \
            (action, applied.before, target)
        assert applied.event.actor_id == actor_id
        factories.db.session.expire_all()
        return "allowed", target
    except services.WorkflowError as error:
        return error.status, None


class _Applied(Exception):
    """Carries a successful application out of its savepoint, which is then rolled back."""

    def __init__(self, before, events, event):
        self.before, self.events, self.event = before, events, event


@pytest.mark.parametrize("action", sorted(EXPECTED))
@pytest.mark.parametrize("role", ROLES)
def test_each_role_from_a_source_state(session, action, role):
    roles, sources, target = EXPECTED[action]
    source = sorted(sources)[0]
    dossier = factories.dossier(source)
    outcome, reached = _outcome(action, dossier, role)
    if role in roles:
        assert outcome == "allowed"
        assert reached == (target or source)
    else:
        assert outcome == 403
    session.refresh(dossier)
    assert dossier.state == source  # the savepoint was rolled back


@pytest.mark.parametrize("action", sorted(EXPECTED))
@pytest.mark.parametrize("state", ALL_STATES)
def test_each_source_state_for_an_allowed_role(session, action, state):
    roles, sources, target = EXPECTED[action]
    role = sorted(roles - {SYSTEM})[0] if roles - {SYSTEM} else SYSTEM
    dossier = factories.dossier(state)
    outcome, _ = _outcome(action, dossier, role)
    assert outcome == ("allowed" if state in sources else 409)
    if state not in sources:  # a wrong role is refused whatever the state
        forbidden = next(r for r in ROLES if r not in roles)
        assert _outcome(action, dossier, forbidden)[0] == 403


def test_applicant_of_another_collectivite_is_forbidden(session):
    dossier = factories.dossier("draft")
    stranger = factories.user("applicant", collectivite=factories.commune("21005"))
    with pytest.raises(services.ActionForbidden, match="n'appartient pas"):
        services.submit(dossier, stranger, now=NOW)


def test_submit_after_deadline_is_refused_and_last_second_accepted(session):
    deadline = factories.campaign().deadline_at
    late = factories.dossier("draft")
    with pytest.raises(services.ActionConflict, match="Date limite dépassée.*30 juin 2027"):
        services.submit(late, factories.applicant_of(late.collectivite), now=deadline)
    just_in_time = factories.dossier("draft")
    services.submit(just_in_time, factories.applicant_of(just_in_time.collectivite),
                    now=deadline - timedelta(seconds=1))
    assert just_in_time.state == "received"


def test_submit_says_what_is_missing(session):
    dossier = factories.dossier("draft", lines=[])
    author = factories.applicant_of(dossier.collectivite)
    with pytest.raises(services.ActionConflict, match="au moins une ligne"):
        services.submit(dossier, author, now=NOW)
    services.add_line(dossier, category="equipement", label="Serveur", amount_ht=Decimal("900.00"))
    session.flush()
    with pytest.raises(services.ActionConflict, match="« Serveur »"):
        services.submit(dossier, author, now=NOW)


def test_submit_refused_when_the_rules_say_ineligible(session):
    big_epci = factories.epci("242100410")  # Dijon Métropole, over 50,000 inhabitants
    dossier = factories.dossier("draft", aid=2, collectivite=big_epci)
    with pytest.raises(services.ActionConflict, match="50"):
        services.submit(dossier, factories.applicant_of(big_epci), now=NOW)
    assert dossier.state == "draft"


def test_submit_freezes_population_and_scope(session):
    dossier = factories.dossier("received", aid=4)
    assert dossier.population == 22152 and dossier.population_year == 2022
    assert dossier.cap_scope == "epci-territoire:200000925"
    assert dossier.requested_amount == Decimal("4800.00")


def test_double_submission_leaves_one_event(session):
    dossier = factories.dossier("draft")
    author = factories.applicant_of(dossier.collectivite)
    services.submit(dossier, author, now=NOW)
    with pytest.raises(services.ActionConflict):
        services.submit(dossier, author, now=NOW)
    submits = session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.dossier_id == dossier.id, AuditEvent.action == "submit"))
    assert submits == 1


def test_reason_is_required_where_the_table_says(session):
    dossier = factories.dossier("received")
    with pytest.raises(services.InvalidAction, match="Indiquez un motif"):
        services.refuse(dossier, factories.staff(), "   ", now=NOW)


def test_grant_commits_to_the_envelope_and_never_beyond(session):
    first = factories.dossier("granted", aid=2, lines=[{"category": "equipement", "label": "A", "amount_ht": "70000.00"}])
    assert first.granted_amount == Decimal("28000.00")
    second = factories.dossier("eligible", aid=2, lines=[{"category": "equipement", "label": "B", "amount_ht": "10000.00"}])
    # Declared eligible with the cap in view: 2,000 € left of 30,000 €.
    assert second.computed_amount == Decimal("2000.00")
    third = factories.dossier("eligible", aid=2, lines=[{"category": "equipement", "label": "C", "amount_ht": "10000.00"}])
    services.grant(second, factories.staff(), Decimal("1500.00"), now=NOW)
    with pytest.raises(services.ActionConflict, match="ne peut plus recevoir que 500,00"):
        services.grant(third, factories.staff(), now=NOW)
    services.grant(third, factories.staff(), Decimal("500.00"), now=NOW)
    envelope = session.scalar(select(Envelope).where(Envelope.scope == "epci:200000925"))
    assert envelope.consumed == envelope.cap_limit == Decimal("30000.00")


def test_grant_more_than_computed_is_refused(session):
    dossier = factories.dossier("eligible")
    with pytest.raises(services.InvalidAction, match="ne peut pas dépasser"):
        services.grant(dossier, factories.staff(), dossier.computed_amount + Decimal("0.01"), now=NOW)


def test_refused_or_cancelled_grants_release_the_envelope(session):
    dossier = factories.dossier("granted", aid=2)
    envelope = session.scalar(select(Envelope).where(Envelope.scope == "epci:200000925"))
    assert envelope.consumed == Decimal("4000.00")
    services.cancel_grant(dossier, factories.staff("admin"), "Erreur d'instruction", now=NOW)
    session.refresh(envelope)
    assert envelope.consumed == Decimal("0.00") and dossier.state == "eligible"
    assert dossier.granted_amount is None


def test_partial_then_final_payment_releases_the_unpaid_remainder(session):
    dossier = factories.dossier("granted", aid=2)  # 4,000.00 granted
    finance = factories.staff("finance")
    services.record_payment(dossier, finance, amount=Decimal("1000.00"), paid_on=date(2026, 11, 28),
                            reference="M-1", final=False, now=NOW)
    assert dossier.state == "granted" and dossier.paid_amount == Decimal("1000.00")
    with pytest.raises(services.InvalidAction, match="dépasse le montant attribué"):
        services.record_payment(dossier, finance, amount=Decimal("3000.01"), paid_on=date(2026, 11, 28),
                                reference="M-2", final=False, now=NOW)
    with pytest.raises(services.ConfirmationRequired, match="500,00.€ seront rendus à l'enveloppe"):
        services.record_payment(dossier, finance, amount=Decimal("2500.00"), paid_on=date(2026, 11, 28),
                                reference="M-3", final=True, now=NOW)
    services.record_payment(dossier, finance, amount=Decimal("2500.00"), paid_on=date(2026, 11, 28),
                            reference="M-3", final=True, now=NOW, confirmed_release=Decimal("500.00"))
    assert dossier.state == "paid" and dossier.paid_amount == Decimal("3500.00")
    envelope = session.scalar(select(Envelope).where(Envelope.scope == "epci:200000925"))
    assert envelope.consumed == Decimal("3500.00")


def test_payments_summing_to_the_grant_mark_it_paid(session):
    dossier = factories.dossier("granted", aid=2)
    services.record_payment(dossier, factories.staff("finance"), amount=Decimal("4000.00"),
                            paid_on=date(2026, 11, 28), reference="M-1", final=False, now=NOW)
    assert dossier.state == "paid"


def test_aid1_pack_is_granted_once_per_commune(session):
    first = factories.dossier("granted", aid=1)
    assert first.granted_amount == Decimal("1000.00")
    second = factories.dossier("received", aid=1, lines=[
        {"category": "equipement", "label": "Écran", "amount_ht": "800.00", "pack": 1},
        {"category": "logiciel", "label": "Logiciel", "amount_ht": "400.00", "pack": 2},
    ])
    services.declare_eligible(second, factories.staff(), now=NOW)
    assert second.computed_amount == Decimal("400.00")  # pack 1 already granted
    services.grant(second, factories.staff(), now=NOW)
    packs = session.scalars(select(PackGrant.pack).where(PackGrant.collectivite_id == first.collectivite_id))
    assert sorted(packs) == [1, 2]


def test_expire_only_after_the_deadline(session):
    dossier = factories.dossier("draft")
    with pytest.raises(services.ActionConflict, match="pas encore passée"):
        services.expire(dossier, None, now=NOW)
    services.expire(dossier, None, now=AFTER_DEADLINE)
    assert dossier.state == "expired" and dossier.closed_at == AFTER_DEADLINE


def test_every_transition_queues_a_notification_once(session):
    dossier = factories.dossier("received")
    messages = session.scalars(select(OutboxMessage).where(OutboxMessage.dossier_id == dossier.id)).all()
    assert [m.kind for m in messages] == ["submit"]
    assert [d.email for d in messages[0].deliveries] == [factories.applicant_of(dossier.collectivite).email]


def test_audit_trail_records_actor_states_instant_and_reason(session):
    dossier = factories.dossier("refused")
    trail = [(e.action, e.from_state, e.to_state) for e in dossier.events]
    assert trail == [("create", None, "draft"), ("submit", "draft", "received"),
                     ("refuse", "received", "refused")]
    refusal = dossier.events[-1]
    assert refusal.reason == "Motif" and refusal.at == NOW
    assert refusal.actor.role == "instructor"


def test_available_actions_explain_what_is_unavailable(session):
    dossier = factories.dossier("draft", lines=[])
    ctx = Context(role="applicant", now=NOW, collectivite_id=dossier.collectivite_id)
    actions = {a.transition.action: a for a in available_actions(dossier, ctx)}
    assert set(actions) == {"submit"}
    assert actions["submit"].reason == "Ajoutez au moins une ligne de dépense."
    staff_actions = available_actions(factories.dossier("received"), Context(role="instructor", now=NOW))
    assert {a.transition.action for a in staff_actions} == {
        "request_documents", "declare_eligible", "declare_ineligible", "refuse"}


def test_a_payment_cannot_be_dated_in_the_future(session):
    dossier = factories.dossier("granted")
    with pytest.raises(services.InvalidAction, match="dans le futur"):
        services.record_payment(dossier, factories.staff("finance"), amount=Decimal("100.00"),
                                paid_on=date(2026, 11, 29), reference="M-1", final=False, now=NOW)
    assert dossier.payments == [] and dossier.state == "granted"


def test_resubmission_follows_the_lines_changed_meanwhile(session):
    dossier = factories.dossier("incomplete", aid=2)  # 10,000 € HT → 4,000 € asked
    assert dossier.requested_amount == Decimal("4000.00")
    dossier.lines[0].amount_ht = Decimal("12000.00")
    services.resubmit(dossier, factories.applicant_of(dossier.collectivite), "Devis corrigé", now=NOW)
    assert dossier.requested_amount == Decimal("4800.00")
