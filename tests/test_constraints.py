"""The database itself refuses states that break the invariants, whatever the code does."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from instruction.dossiers.models import Dossier, Envelope, ExpenseLine, Payment
from instruction.extensions import db
from tests import factories


def violates(statement) -> bool:
    try:
        with db.session.begin_nested():
            db.session.execute(statement)
    except IntegrityError:
        return True
    return False


@pytest.mark.parametrize("values", [
    {"state": "granted", "granted_amount": None},
    {"state": "paid", "granted_amount": Decimal("100.00"), "paid_amount": None},
    {"paid_amount": Decimal("4000.01")},
    {"granted_amount": Decimal("-1.00")},
    {"state": "unknown"},
    {"aid_number": 6},
    {"submitted_at": None},
])
def test_dossier_invariants(session, values):
    dossier = factories.dossier("granted")  # 4,000.00 granted
    assert violates(update(Dossier).where(Dossier.id == dossier.id).values(**values))


def test_a_valid_change_passes(session):
    dossier = factories.dossier("granted")
    db.session.add(Payment(dossier_id=dossier.id, amount=Decimal("4000.00"), paid_on=date(2026, 11, 28),
                           reference="M-1", budget_year=2026, is_final=True))
    db.session.flush()
    assert not violates(update(Dossier).where(Dossier.id == dossier.id).values(paid_amount=Decimal("4000.00")))


@pytest.mark.parametrize("values", [
    {"amount_ht": Decimal("-0.01")}, {"pack": 4}, {"months": 0}, {"category": "voyage"},
])
def test_expense_line_invariants(session, values):
    dossier = factories.dossier("draft")
    assert violates(update(ExpenseLine).where(ExpenseLine.dossier_id == dossier.id).values(**values))


def test_envelope_consumption_is_never_negative(session):
    # Not above the cap either, but that is the grant's conditional UPDATE (tests/test_concurrency.py,
    # tests/test_envelope_cap.py): a dated lowering of the cap may leave consumed above it, reported.
    factories.dossier("granted")
    assert violates(update(Envelope).values(consumed=Decimal("-0.01")))


def test_money_column_refuses_floats(session):
    dossier = factories.dossier("draft")
    dossier.requested_amount = 12.5
    with pytest.raises(Exception, match="float"):
        session.flush()
    session.rollback()
