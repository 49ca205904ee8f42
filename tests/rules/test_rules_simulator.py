"""The simulator's JSON entry points (the data cases in cases/ cover the rules themselves)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from instruction.rules import Consumption, SimulationInputError, parse_simulation_json, simulate
from instruction.rules.simulator import render_simulation_json
from tests.rules.support import resolve

ISSUE_EXAMPLE = """{"campaign": "pair-2021",
 "dossiers": [
   {"ref": "a", "aid": 1, "beneficiary": {"commune": "21001"},
    "submitted_at": "2021-06-01T10:00:00+02:00",
    "expenses": [{"category": "equipement", "amount_ht": "1800.00", "pack": 1},
                 {"category": "licence", "amount_ht": "900.00", "pack": 3, "months": 48}]},
   {"ref": "b", "aid": 4, "beneficiary": {"sivos": {"name": "SIVOS des Trois Vallées",
     "epci": "200000925"}}, "submitted_at": "2021-12-31T23:59:59+01:00",
    "expenses": [{"category": "cablage", "amount_ht": "12000.00"}]}]}"""


def test_issue_example_output_format():
    result = simulate(parse_simulation_json(ISSUE_EXAMPLE), resolve)
    assert result["campaign"] == "pair-2021"
    first = result["dossiers"][0]
    assert {"ref", "aid", "beneficiary", "eligible", "amount", "eligible_base", "computed_amount",
            "packs_granted", "findings", "cap", "parameters_version"} <= set(first)
    assert (first["ref"], first["eligible"], first["amount"]) == ("a", True, "1675.00")
    assert first["cap"] == {"scope": "commune:21001", "limit": "2500.00",
                            "consumed_before": "0.00", "consumed_after": "1675.00"}
    assert set(first["findings"][0]) == {"code", "ok", "blocking", "message"}
    assert result["dossiers"][1]["amount"] == "4800.00"
    # The output is plain JSON (no Decimal, no datetime) and keeps French characters readable.
    text = render_simulation_json(result)
    assert json.loads(text) == result and "Dossier déposé" in text


def test_json_numbers_are_never_floats():
    payload = parse_simulation_json('{"a": 1.10, "b": 2, "c": [0.1]}')
    assert payload == {"a": Decimal("1.10"), "b": 2, "c": [Decimal("0.1")]}
    assert isinstance(payload["a"], Decimal) and isinstance(payload["b"], int)


def test_amount_given_as_json_decimal_number_is_refused():
    payload = parse_simulation_json(ISSUE_EXAMPLE.replace('"1800.00"', "1800.00"))
    with pytest.raises(SimulationInputError, match=r"dossiers\[0\] \(ref « a »\) : "
                                                   r"expenses\[0\]\.amount_ht : montant \"1800.00\" refusé"):
        simulate(payload, resolve)


def test_amount_given_as_json_integer_is_accepted():
    payload = parse_simulation_json(ISSUE_EXAMPLE.replace('"1800.00"', "1800"))
    assert simulate(payload, resolve)["dossiers"][0]["amount"] == "1675.00"


@pytest.mark.parametrize(("text", "message"), [
    ("{", "JSON invalide : Expecting property name enclosed in double quotes (ligne 1, colonne 2)."),
    ("", "JSON invalide"),
    ('{"a": NaN}', "NaN n'est pas un nombre accepté"),
    ('{"a": Infinity}', "Infinity n'est pas un nombre accepté"),
    ('{"a": 1, "a": 2}', "clé « a » en double"),
    (b"\xff\xfe{", "JSON invalide"),
])
def test_invalid_json(text, message):
    with pytest.raises(SimulationInputError) as error:
        parse_simulation_json(text)
    assert message in str(error.value)


@pytest.mark.parametrize("payload", [[], "pair-2021", None, 3])
def test_payload_must_be_an_object(payload):
    with pytest.raises(SimulationInputError, match="entrée : un objet JSON est attendu"):
        simulate(payload, resolve)


def test_initial_consumption_comes_from_the_caller():
    calls = []

    def initial(campaign, aid, scope):
        calls.append((campaign, aid, scope))
        return Consumption(Decimal("1000.00"), frozenset({1}))

    result = simulate(parse_simulation_json(ISSUE_EXAMPLE), resolve, initial=initial)
    first = result["dossiers"][0]
    assert first["amount"] == "675.00"  # Pack 1 was already granted: only Pack 3 (675.00) remains
    assert first["cap"]["consumed_before"] == "1000.00"
    assert first["cap"]["consumed_after"] == "1675.00"
    assert calls == [("pair-2021", 1, "commune:21001"), ("pair-2021", 4, "epci-territoire:200000925")]


def test_resolver_errors_are_located():
    def resolve_nothing(beneficiary):
        raise SimulationInputError("bénéficiaire introuvable")

    with pytest.raises(SimulationInputError,
                       match=r"^dossiers\[0\] \(ref « a »\) : beneficiary : bénéficiaire introuvable$"):
        simulate(parse_simulation_json(ISSUE_EXAMPLE), resolve_nothing)
