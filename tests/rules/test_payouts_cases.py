"""Payable amount of payment requests, as data: every tests/rules/payouts/*.yaml case.

A case: name, aid, kind (acompte | solde), granted, optional already_paid, instalments_paid,
packs_granted, campaign (default pair-2021), decided_on (default 2021-09-01) and lines (realised
expenses); expected: any of eligible_base, justified, amount, released, refused, and failed (the
exact list of failed finding codes).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from instruction.rules import ExpenseLine, load_campaign
from instruction.rules.payouts import Claim, balance_due_on, payable, payment_rules

CASES = Path(__file__).parent / "payouts"


def _load() -> list:
    return [pytest.param(case, id=case["name"])
            for path in sorted(CASES.glob("*.yaml"))
            for case in yaml.safe_load(path.read_text(encoding="utf-8"))]


ALL = _load()


def test_case_names_are_unique_and_many():
    names = [p.id for p in ALL]
    assert len(names) == len(set(names)) and len(names) >= 20


@pytest.mark.parametrize("case", ALL)
def test_payable_case(case):
    decided = date.fromisoformat(case.get("decided_on", "2021-09-01"))
    aid = load_campaign(case.get("campaign", "pair-2021")).rules(case["aid"], decided)
    lines = tuple(ExpenseLine(category=line["category"], amount_ht=Decimal(line["amount_ht"]),
                              pack=line.get("pack"), months=line.get("months"))
                  for line in case["lines"])
    claim = Claim(kind=case["kind"], lines=lines, granted=Decimal(case["granted"]),
                  already_paid=Decimal(case.get("already_paid", "0.00")),
                  instalments_paid=case.get("instalments_paid", 0),
                  packs_granted=frozenset(case.get("packs_granted", ())))
    result = payable(claim, aid, payment_rules(decided))
    expected = case["expected"]
    for key in ("eligible_base", "justified", "amount", "released"):
        if key in expected:
            assert getattr(result, key) == Decimal(expected[key]), (key, result.findings)
    if "refused" in expected:
        assert result.refused is expected["refused"], result.findings
    failed = sorted(f.code for f in result.findings if not f.ok)
    assert failed == sorted(expected.get("failed", [])), [f.message for f in result.findings]
    # Whatever the case: never above the grant, never negative, and never above what is justified.
    assert ZERO <= result.amount <= claim.granted - claim.already_paid
    assert result.justified <= claim.granted


ZERO = Decimal("0.00")


def test_the_payment_rules_in_force_carry_their_references():
    rules = payment_rules(date(2021, 9, 1))
    assert (rules.instalments_max, rules.instalment_max_share,
            rules.reminder_days) == (2, Decimal("0.80"), (90, 30))
    assert all(reference.startswith("Décision du service") for _, reference in rules.references)


@pytest.mark.parametrize("decided, months, last_day", [
    (date(2026, 11, 28), 24, date(2028, 11, 28)),
    (date(2026, 8, 31), 6, date(2027, 2, 28)),  # no 31 February: the last day of the month
    (date(2027, 8, 31), 6, date(2028, 2, 29)),  # a leap year
    (date(2026, 12, 15), 1, date(2027, 1, 15)),  # across the year
    (date(2026, 1, 31), 1, date(2026, 2, 28)),
])
def test_the_last_day_to_ask_for_the_balance(decided, months, last_day):
    assert balance_due_on(decided, months) == last_day
