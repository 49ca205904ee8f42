"""Helpers shared by the rule tests: a fictional territory, its resolver, case checks."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from instruction.rules import Applicant, SimulationInputError

HERE = Path(__file__).parent
TERRITORY = yaml.safe_load((HERE / "territory.yaml").read_text(encoding="utf-8"))
MONEY = re.compile(r"[0-9]+\.[0-9]{2}")


def _epci_fields(siren: str | None) -> dict:
    if siren is None:
        return {}
    epci = TERRITORY["epcis"][siren]
    return {"epci_siren": siren, "epci_name": epci["name"], "epci_population": epci["population"]}


def resolve(beneficiary: dict) -> Applicant:
    """Test double of the app's resolver (same contract, see simulator.simulate)."""
    (kind, value), = beneficiary.items()
    if kind == "commune":
        commune = TERRITORY["communes"].get(value)
        if commune is None:
            raise SimulationInputError(f"commune inconnue « {value} »")
        epci = TERRITORY["epcis"].get(commune["epci"]) if commune["epci"] else None
        return Applicant("commune", value, commune["name"], commune["population"],
                         is_ville_centre=bool(epci and epci["ville_centre"] == value),
                         **_epci_fields(commune["epci"]))
    if kind == "epci":
        epci = TERRITORY["epcis"].get(value)
        if epci is None:
            raise SimulationInputError(f"EPCI inconnu « {value} »")
        return Applicant("epci", value, epci["name"], epci["population"])
    if isinstance(value, dict):  # an ad hoc SIVOS: a name and its EPCI
        if value["epci"] not in TERRITORY["epcis"]:
            raise SimulationInputError(f"EPCI inconnu « {value['epci']} »")
        return Applicant("sivos", value["name"], value["name"], **_epci_fields(value["epci"]))
    sivos = TERRITORY["sivos"].get(value)
    if sivos is None:
        raise SimulationInputError(f"SIVOS inconnu « {value} »")
    return Applicant("sivos", value, sivos["name"], **_epci_fields(sivos["epci"]))


def all_beneficiaries() -> list[dict]:
    return ([{"commune": code} for code in TERRITORY["communes"]]
            + [{"epci": siren} for siren in TERRITORY["epcis"]]
            + [{"sivos": siren} for siren in TERRITORY["sivos"]]
            + [{"sivos": {"name": "SIVOS ad hoc", "epci": "200000925"}}])


def plain(text: str) -> str:
    """Messages use U+00A0 in numbers; compare them with ordinary spaces."""
    return text.replace("\u00a0", " ")


def check_invariants(result: dict) -> None:
    """What must hold for every decision, whatever the case (result = decision_as_dict)."""
    from decimal import Decimal

    for key in ("amount", "eligible_base", "computed_amount"):
        assert MONEY.fullmatch(result[key]), (key, result[key])
    cap = result["cap"]
    for key in ("limit", "consumed_before", "consumed_after"):
        assert MONEY.fullmatch(cap[key]), (key, cap[key])
    amount, before, after = (Decimal(result["amount"]), Decimal(cap["consumed_before"]),
                             Decimal(cap["consumed_after"]))
    failed_blocking = [f for f in result["findings"] if not f["ok"] and f["blocking"]]
    assert after == before + amount
    if result["eligible"]:
        assert not failed_blocking
        assert amount > 0
        assert after <= Decimal(cap["limit"])
        assert amount <= Decimal(result["computed_amount"])
    else:
        assert failed_blocking, "an ineligible dossier must say why"
        assert amount == 0 and result["packs_granted"] == []
    for finding in result["findings"]:
        assert finding["message"] and finding["code"]


def check_expected(result: dict, expected: dict) -> None:
    known = {"ref", "eligible", "amount", "eligible_base", "computed_amount", "packs_granted",
             "failed", "cap", "messages"}
    assert not set(expected) - known, f"unknown expectation keys: {set(expected) - known}"
    for key in ("ref", "eligible", "amount", "eligible_base", "computed_amount", "packs_granted"):
        if key in expected:
            assert result[key] == expected[key], f"{key}: {result[key]!r} != {expected[key]!r}"
    if "failed" in expected:
        failed = sorted(f["code"] for f in result["findings"] if not f["ok"])
        assert failed == sorted(expected["failed"]), _explain(result)
    for key, value in expected.get("cap", {}).items():
        assert result["cap"][key] == value, f"cap.{key}: {result['cap'][key]!r} != {value!r}"
    messages = [plain(f["message"]) for f in result["findings"]]
    for fragment in expected.get("messages", []):
        assert any(fragment in m for m in messages), f"{fragment!r} not in {messages}"


def _explain(result: dict) -> str:
    return "\n".join(f"{'ok ' if f['ok'] else 'KO '}{f['code']}: {plain(f['message'])}"
                     for f in result["findings"])
