"""Rule cases as data: every tests/rules/cases/*.yaml file is a list of cases.

A case is one of three kinds (see docs/rules.md, "Tests as data"):

- ``evaluate`` (default): one dossier through ``engine.evaluate``. Keys: name, aid, lines,
  ``beneficiary`` (resolved in tests/rules/territory.yaml) or an inline ``applicant``, optional
  campaign (default pair-2021), submitted_at (default 2021-06-01T10:00:00+02:00) and
  consumption ({consumed, packs}); expected: eligible, amount, failed (the exact list of failed
  finding codes) and optionally eligible_base, computed_amount, packs_granted, cap, messages
  (fragments that some finding message contains; U+00A0 compares as a space).
- ``sequence``: a simulator payload (the JSON input, as YAML) and one expectation per dossier.
- ``invalid``: a simulator payload that must be refused with an ``error`` message fragment.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from instruction.rules import (
    Applicant,
    Consumption,
    ExpenseLine,
    SimulationInputError,
    evaluate,
    load_campaign,
    simulate,
)
from instruction.rules.simulator import decision_as_dict
from tests.rules.support import check_expected, check_invariants, plain, resolve

CASES = Path(__file__).parent / "cases"
DEFAULT_SUBMITTED_AT = "2021-06-01T10:00:00+02:00"


def _load() -> list:
    cases = []
    for path in sorted(CASES.glob("*.yaml")):
        for case in yaml.safe_load(path.read_text(encoding="utf-8")):
            cases.append(pytest.param(case, id=case["name"]))
    return cases


ALL_CASES = _load()


def test_case_names_are_unique():
    names = [param.id for param in ALL_CASES]
    assert len(names) == len(set(names))
    assert len(names) >= 80


def _run_evaluate(case: dict) -> None:
    params = load_campaign(case.get("campaign", "pair-2021"))
    if "beneficiary" in case:
        applicant = resolve(case["beneficiary"])
    else:
        applicant = Applicant(**case["applicant"])
    lines = [ExpenseLine(category=line["category"], amount_ht=Decimal(line["amount_ht"]),
                         label=line.get("label", ""), pack=line.get("pack"),
                         months=line.get("months"))
             for line in case.get("lines", [])]
    spec = case.get("consumption", {})
    consumption = Consumption(Decimal(spec.get("consumed", "0.00")),
                              frozenset(spec.get("packs", [])))
    submitted_at = datetime.fromisoformat(case.get("submitted_at", DEFAULT_SUBMITTED_AT))
    decision = evaluate(applicant, case["aid"], lines, submitted_at, params, consumption)
    result = decision_as_dict(decision)
    check_invariants(result)
    assert "failed" in case["expected"], "evaluate cases pin the exact failed codes"
    check_expected(result, case["expected"])


def _run_sequence(case: dict) -> None:
    output = simulate(case["payload"], resolve)
    results = output["dossiers"]
    assert len(results) == len(case["expected"]) == len(case["payload"]["dossiers"])
    for result, expected in zip(results, case["expected"], strict=True):
        check_invariants(result)
        check_expected(result, expected)


def _run_invalid(case: dict) -> None:
    with pytest.raises(SimulationInputError) as error:
        simulate(case["payload"], resolve)
    assert case["error"] in plain(str(error.value))


@pytest.mark.parametrize("case", ALL_CASES)
def test_rule_case(case):
    kind = case.get("kind", "evaluate")
    {"evaluate": _run_evaluate, "sequence": _run_sequence, "invalid": _run_invalid}[kind](case)
