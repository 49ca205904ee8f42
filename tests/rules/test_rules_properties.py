"""Properties of the rules over random sequences of dossiers (hypothesis)."""

from __future__ import annotations

import decimal
from collections import defaultdict
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from instruction.rules import (
    CATEGORIES,
    Consumption,
    ExpenseLine,
    evaluate,
    load_campaign,
    simulate,
)
from instruction.rules.money import round_down
from tests.rules.support import all_beneficiaries, check_invariants, resolve

PARAMS = load_campaign("pair-2021")
RATE = Decimal("0.40")
FORFAITS = {1: Decimal("1000.00"), 2: Decimal("500.00"), 3: Decimal("1000.00")}
INSTANTS = ["2021-06-01T10:00:00+02:00", "2021-12-31T23:59:59+01:00",
            "2022-01-01T00:00:00+01:00", "2020-12-31T23:59:59+01:00"]

cents = st.integers(min_value=0, max_value=3_000_000)  # up to 30,000.00 € per line


@st.composite
def expense(draw, aid: int) -> dict:
    category = draw(st.sampled_from(CATEGORIES))
    line = {"category": category, "amount_ht": draw(cents)}
    if aid == 1:
        pack = draw(st.one_of(st.none(), st.integers(1, 3)))
        if pack is not None:
            line["pack"] = pack
    if category == "licence" and draw(st.booleans()):
        line["months"] = draw(st.integers(1, 120))
    return line


@st.composite
def dossier(draw) -> dict:
    aid = draw(st.integers(1, 5))
    return {
        "aid": aid,
        "beneficiary": draw(st.sampled_from(all_beneficiaries())),
        "submitted_at": draw(st.sampled_from(INSTANTS[:2]) if draw(st.integers(0, 9))
                             else st.sampled_from(INSTANTS)),
        "expenses": draw(st.lists(expense(aid), max_size=4)),
    }


def canonical(c: int) -> str:
    return f"{c // 100}.{c % 100:02d}"


def payload(dossiers: list[dict], amount=canonical) -> dict:
    return {"campaign": "pair-2021", "dossiers": [
        {**d, "ref": str(i), "expenses": [{**e, "amount_ht": amount(e["amount_ht"])}
                                          for e in d["expenses"]]}
        for i, d in enumerate(dossiers)]}


def run(data: dict) -> dict:
    """Simulate with float operations trapped: mixing a float into Decimal arithmetic raises."""
    with decimal.localcontext() as context:
        context.traps[decimal.FloatOperation] = True
        return simulate(data, resolve)


sequences = st.lists(dossier(), min_size=1, max_size=15)


@settings(max_examples=300, deadline=None)
@given(sequences)
def test_sequences_respect_caps_rates_and_packs(dossiers):
    result = run(payload(dossiers))
    granted = defaultdict(Decimal)  # (aid, scope) -> total granted
    packs = defaultdict(set)  # commune scope -> packs granted
    for spec, out in zip(dossiers, result["dossiers"], strict=True):
        check_invariants(out)
        amount, base = Decimal(out["amount"]), Decimal(out["eligible_base"])
        limit, key = Decimal(out["cap"]["limit"]), (spec["aid"], out["cap"]["scope"])
        assert amount >= 0 and amount.as_tuple().exponent == -2
        assert base <= sum((Decimal(e["amount_ht"]).scaleb(-2) for e in spec["expenses"]), Decimal(0))
        assert Decimal(out["cap"]["consumed_before"]) == granted[key]
        granted[key] += amount
        assert granted[key] <= limit
        if spec["aid"] == 1:
            assert amount <= sum((FORFAITS[p] for p in out["packs_granted"]), Decimal(0))
            assert not packs[key] & set(out["packs_granted"]), "a pack is granted once per commune"
            packs[key] |= set(out["packs_granted"])
        else:
            assert out["packs_granted"] == []
            assert Decimal(out["computed_amount"]) == round_down(base * RATE)
            assert amount <= base * RATE
        for finding in out["findings"]:
            assert "None" not in finding["message"] and "{" not in finding["message"]


@st.composite
def representation(draw, c: int):
    """One of the ways to write the same amount in the simulator input."""
    options = [canonical(c), "0" + canonical(c)]
    if c % 10 == 0:
        options.append(f"{c // 100}.{(c % 100) // 10}")
    if c % 100 == 0:
        options += [str(c // 100), c // 100]
    return draw(st.sampled_from(options))


@settings(max_examples=150, deadline=None)
@given(sequences, st.data())
def test_result_does_not_depend_on_how_amounts_are_written(dossiers, data):
    reference = run(payload(dossiers))
    rewritten = run(payload(dossiers, amount=lambda c: data.draw(representation(c))))
    assert rewritten == reference


@settings(max_examples=300, deadline=None)
@given(aid=st.integers(2, 5), base=cents, consumed=st.integers(0, 5_000_000))
def test_amount_never_exceeds_what_is_left(aid, base, consumed):
    applicant = resolve({"epci": "200000925"})
    before = Decimal(consumed).scaleb(-2)
    decision = evaluate(applicant, aid, [ExpenseLine("logiciel", Decimal(base).scaleb(-2))],
                        PARAMS.opens_at, PARAMS, Consumption(before))
    limit = decision.cap.limit
    assert Decimal(0) <= decision.amount <= max(Decimal(0), limit - before)
    assert decision.amount <= decision.computed_amount
    assert decision.cap.consumed_after == before + decision.amount
    meets_minimum = aid != 4 or base >= 1_000_000  # aid 4: project of at least 10,000.00
    if before < limit and decision.computed_amount > 0 and meets_minimum:
        assert decision.eligible
        assert decision.amount == min(decision.computed_amount, limit - before)
