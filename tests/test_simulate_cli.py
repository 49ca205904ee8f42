"""`instruction simulate`: beneficiaries resolved from the territory data, JSON in and out."""

from __future__ import annotations

import json

import pytest

from instruction.dossiers import services

SCENARIO = {
    "campaign": "pair-2021",
    "dossiers": [
        {"ref": "a", "aid": 1, "beneficiary": {"commune": "21001"},
         "submitted_at": "2021-06-01T10:00:00+02:00",
         "expenses": [{"category": "equipement", "amount_ht": "1800.00", "pack": 1},
                      {"category": "licence", "amount_ht": "900.00", "pack": 3, "months": 48}]},
        {"ref": "b", "aid": 4,
         "beneficiary": {"sivos": {"name": "SIVOS des Trois Vallées", "epci": "200000925"}},
         "submitted_at": "2021-12-31T23:59:59+01:00",
         "expenses": [{"category": "cablage", "amount_ht": "12000.00"}]},
        {"ref": "c", "aid": 4, "beneficiary": {"commune": "21292"},  # Genlis, same EPCI
         "submitted_at": "2021-10-01T10:00:00+02:00",
         "expenses": [{"category": "equipement", "amount_ht": "100000.00"}]},
        {"ref": "d", "aid": 4, "beneficiary": {"epci": "200000925"},
         "submitted_at": "2021-10-02T10:00:00+02:00",
         "expenses": [{"category": "equipement", "amount_ht": "20000.00"}]},
        {"ref": "e", "aid": 5, "beneficiary": {"commune": "21292"},  # ville centre
         "submitted_at": "2021-10-02T10:00:00+02:00",
         "expenses": [{"category": "logiciel", "amount_ht": "80000.00"}]},
        {"ref": "f", "aid": 5, "beneficiary": {"epci": "200000925"},
         "submitted_at": "2021-10-02T10:00:00+02:00",
         "expenses": [{"category": "logiciel", "amount_ht": "10000.00"}]},
        {"ref": "g", "aid": 2, "beneficiary": {"epci": "242100410"},  # Dijon Métropole
         "submitted_at": "2022-01-01T00:00:00+01:00",
         "expenses": [{"category": "logiciel", "amount_ht": "10000.00"}]},
    ],
}


def run(app, text: str):
    return app.test_cli_runner().invoke(args=["simulate", "-"], input=text)


def test_hand_computed_scenario_with_cumulated_caps(app, session):
    result = run(app, json.dumps(SCENARIO))
    assert result.exit_code == 0, result.stderr
    out = {d["ref"]: d for d in json.loads(result.stdout)["dossiers"]}
    assert out["a"]["amount"] == "1675.00"  # 1,000 (pack 1) + 900 × 36/48 = 675 (pack 3)
    assert out["b"]["amount"] == "4800.00"  # 40 % of 12,000
    # Genlis shares aid 4's 40,000 € cap with its EPCI and the SIVOS: 40,000 − 4,800 left.
    assert out["c"]["amount"] == "35200.00"
    assert out["c"]["cap"] == {"scope": "epci-territoire:200000925", "limit": "40000.00",
                               "consumed_before": "4800.00", "consumed_after": "40000.00"}
    assert out["d"]["eligible"] is False and out["d"]["amount"] == "0.00"
    assert out["e"]["amount"] == "30000.00"  # ville centre, capped at 30,000
    assert out["f"]["eligible"] is False  # the EPCI shares aid 5's cap with its ville centre
    assert out["g"]["eligible"] is False
    failed = {f["code"] for f in out["g"]["findings"] if not f["ok"]}
    assert failed, "an ineligible dossier says why"
    assert all(f["message"] for f in out["g"]["findings"])


@pytest.mark.parametrize("text, message", [
    ("{", "JSON invalide"),
    ('{"campaign": "pair-2099", "dossiers": []}', "campagne inconnue"),
    ('{"campaign": "pair-2021", "dossiers": [{"aid": 1, "beneficiary": {"commune": "00000"}, '
     '"submitted_at": "2021-06-01T10:00:00+02:00", "expenses": []}]}', "commune inconnue"),
    ('{"campaign": "pair-2021", "dossiers": [{"aid": 2, "beneficiary": {"epci": "200000925"}, '
     '"submitted_at": "2021-06-01T10:00:00+02:00", "expenses": [{"category": "equipement", '
     '"amount_ht": 12.5}]}]}', "amount_ht"),
])
def test_invalid_input_exits_2_with_a_message(app, session, text, message):
    result = run(app, text)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_with_commitments_starts_from_the_envelopes_in_the_database(app, session):
    from tests import factories

    factories.dossier("granted", aid=2)  # 40 % of 10,000 € → 4,000 € of EPCI 200000925's 30,000 €
    cancelled = factories.dossier("granted", aid=4)  # 4,800 €, then released: an envelope at 0,00 €
    services.cancel_grant(cancelled, factories.staff("admin"), "Erreur de saisie", now=factories.NOW)
    factories.dossier("granted", aid=1)  # pack 1 of commune 21001
    session.flush()
    at = factories.NOW.isoformat()
    scenario = {"campaign": "demo", "dossiers": [
        {"ref": "aid2", "aid": 2, "beneficiary": {"epci": "200000925"}, "submitted_at": at,
         "expenses": [{"category": "equipement", "amount_ht": "70000.00"}]},
        {"ref": "aid4", "aid": 4, "beneficiary": {"epci": "200000925"}, "submitted_at": at,
         "expenses": [{"category": "cablage", "amount_ht": "12000.00"}]},
        {"ref": "aid1", "aid": 1, "beneficiary": {"commune": "21001"}, "submitted_at": at,
         "expenses": [{"category": "equipement", "amount_ht": "1200.00", "pack": 1}]},
    ]}
    result = app.test_cli_runner().invoke(args=["simulate", "--with-commitments", "-"],
                                          input=json.dumps(scenario))
    assert result.exit_code == 0, result.stderr or result.output
    out = {d["ref"]: d for d in json.loads(result.stdout)["dossiers"]}
    # 40 % of 70,000 € is 28,000 €, but only 30,000 − 4,000 = 26,000 € are left.
    assert out["aid2"]["amount"] == "26000.00"
    assert out["aid2"]["cap"]["consumed_before"] == "4000.00"
    assert out["aid4"]["amount"] == "4800.00" and out["aid4"]["cap"]["consumed_before"] == "0.00"
    assert out["aid1"]["amount"] == "0.00"  # pack 1 was already granted to the commune
    without = app.test_cli_runner().invoke(args=["simulate", "-"], input=json.dumps(scenario))
    assert {d["ref"]: d["amount"] for d in json.loads(without.stdout)["dossiers"]} == \
        {"aid2": "28000.00", "aid4": "4800.00", "aid1": "1000.00"}
