"""Validation of the engine's inputs (the dataclasses refuse what the rules cannot handle)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from instruction.rules import (
    Applicant,
    Consumption,
    ExpenseLine,
    cap_scope,
    evaluate,
    load_campaign,
)

PARAMS = load_campaign("pair-2021")
AT = datetime.fromisoformat("2021-06-01T10:00:00+02:00")


def test_expense_amount_is_normalised_to_cents():
    assert ExpenseLine("logiciel", Decimal("10")) == ExpenseLine("logiciel", Decimal("10.00"))
    assert ExpenseLine("logiciel", Decimal("10.000")).amount_ht.as_tuple().exponent == -2


@pytest.mark.parametrize("amount", [10.5, 10, "10.00", Decimal("10.001"), Decimal("-1"),
                                    Decimal("NaN"), Decimal("Infinity")])
def test_expense_amount_must_be_a_non_negative_decimal_in_cents(amount):
    with pytest.raises(ValueError):
        ExpenseLine("logiciel", amount)


@pytest.mark.parametrize("kwargs", [{"category": "mobilier"}, {"pack": 0}, {"months": 0},
                                    {"months": True}, {"pack": "1"}])
def test_expense_line_rejects(kwargs):
    with pytest.raises(ValueError):
        ExpenseLine(**{"category": "licence", "amount_ht": Decimal("1.00"), **kwargs})


def test_epci_applicant_is_its_own_epci():
    epci = Applicant("epci", "200000925", "CC", 30000)
    assert (epci.epci_siren, epci.epci_name, epci.epci_population) == ("200000925", "CC", 30000)
    with pytest.raises(ValueError, match="epci_siren"):
        Applicant("epci", "200000925", "CC", 30000, epci_siren="200000001")
    with pytest.raises(ValueError, match="epci_population"):
        Applicant("epci", "200000925", "CC", 30000, epci_population=1)


@pytest.mark.parametrize("kwargs", [{"kind": "region"}, {"id": ""}, {"population": -1},
                                    {"population": 10.0}, {"epci_population": True}])
def test_applicant_rejects(kwargs):
    with pytest.raises(ValueError):
        Applicant(**{"kind": "commune", "id": "21001", "name": "X", **kwargs})


def test_consumption_rejects_negative_and_float():
    with pytest.raises(ValueError):
        Consumption(Decimal("-0.01"))
    with pytest.raises(ValueError):
        Consumption(1.5)


def test_dataclasses_are_frozen():
    line = ExpenseLine("logiciel", Decimal("1"))
    with pytest.raises(AttributeError):
        line.amount_ht = Decimal("2")


def test_cap_scope_keys():
    commune = Applicant("commune", "21001", "C", 999, "200000925", "CC", 30000)
    sivos = Applicant("sivos", "200090001", "S", None, "200000925", "CC", 30000)
    epci = Applicant("epci", "200000925", "CC", 30000)
    assert cap_scope(commune, 1, PARAMS) == "commune:21001"
    assert cap_scope(epci, 2, PARAMS) == cap_scope(epci, 3, PARAMS) == "epci:200000925"
    assert {cap_scope(a, 4, PARAMS) for a in (commune, sivos, epci)} == {"epci-territoire:200000925"}
    assert cap_scope(commune, 5, PARAMS) == cap_scope(epci, 5, PARAMS) == \
        "epci-ville-centre:200000925"
    with pytest.raises(ValueError):
        cap_scope(epci, 1, PARAMS)
    with pytest.raises(ValueError):
        cap_scope(Applicant("commune", "99001", "Île", 10), 4, PARAMS)


def test_evaluate_refuses_naive_instant_and_unknown_aid():
    epci = Applicant("epci", "200000925", "CC", 30000)
    lines = [ExpenseLine("logiciel", Decimal("100"))]
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate(epci, 2, lines, datetime(2021, 6, 1), PARAMS)
    with pytest.raises(ValueError, match="no aid 6"):
        evaluate(epci, 6, lines, AT, PARAMS)


def test_evaluate_refuses_consumption_of_another_scope():
    epci = Applicant("epci", "200000925", "CC", 30000)
    lines = [ExpenseLine("logiciel", Decimal("100"))]
    ok = evaluate(epci, 2, lines, AT, PARAMS, Consumption(scope="epci:200000925"))
    assert ok.eligible
    with pytest.raises(ValueError, match="scope"):
        evaluate(epci, 2, lines, AT, PARAMS, Consumption(scope="epci:200000001"))


def test_decision_records_parameters_version():
    epci = Applicant("epci", "200000925", "CC", 30000)
    decision = evaluate(epci, 2, [ExpenseLine("logiciel", Decimal("100"))], AT, PARAMS)
    assert decision.parameters_version == PARAMS.version
    assert decision.parameters_version.startswith("pair-2021@")
    assert all(f.ok for f in decision.findings) and decision.failed == ()
