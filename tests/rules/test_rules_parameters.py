"""Parameter files: the guide's values, dated lookup, and refusal of malformed files."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime
from decimal import Decimal
from importlib import resources

import pytest
import yaml

from instruction.rules.parameters import (
    DatedParameter,
    DatedValue,
    ParameterError,
    UnknownCampaignError,
    _Loader,
    available_campaigns,
    load_campaign,
    parse_campaign,
)

PARIS_WINTER = "+01:00"


def _text(code: str) -> str:
    return (resources.files("instruction.rules") / "parameters" / f"{code}.yaml").read_text("utf-8")


def test_available_campaigns():
    assert available_campaigns() == ("demo", "pair-2021")


def test_load_is_cached():
    assert load_campaign("pair-2021") is load_campaign("pair-2021")


def test_pair_2021_is_the_guide():
    params = load_campaign("pair-2021")
    at = datetime(2021, 6, 1, 12, tzinfo=UTC)
    r1, r2, r3, r4, r5 = (params.rules(n, at) for n in range(1, 6))
    assert r1.beneficiary_kinds == ("commune",) and r1.population_below == 1000
    assert [(p.number, p.label, p.amount) for p in r1.packs] == [
        (1, "Pack 1", Decimal("1000.00")), (2, "Pack 2", Decimal("500.00")),
        (3, "Pack 3", Decimal("1000.00"))]
    assert r1.licence_max_months == 36 and r1.rate is None
    assert r1.eligible_categories == ("equipement", "logiciel", "licence")
    assert r1.cap_amount == Decimal("2500.00") and r1.cap_scope == "commune"
    for rules in (r2, r3):
        assert rules.beneficiary_kinds == ("epci",)
        assert rules.eligible_categories == ("equipement", "logiciel")
        assert (rules.rate, rules.cap_amount, rules.cap_scope) == (
            Decimal("0.40"), Decimal("30000.00"), "epci")
    assert set(r4.beneficiary_kinds) == {"epci", "commune", "sivos"}
    assert r4.eligible_categories == ("cablage", "equipement", "logiciel")
    assert r4.minimum_project_cost == Decimal("10000.00")
    assert (r4.cap_amount, r4.cap_scope) == (Decimal("40000.00"), "epci-territoire")
    assert r5.ville_centre_only and set(r5.beneficiary_kinds) == {"epci", "commune"}
    assert (r5.cap_amount, r5.cap_scope) == (Decimal("30000.00"), "epci-ville-centre")
    for rules in (r2, r3, r4, r5):
        assert rules.population_basis == "epci" and rules.population_below == 50000
    assert params.title and params.aids[4].title == "Équipement et aménagement numérique des écoles"


def test_every_value_has_a_reference():
    for code in available_campaigns():
        for aid in load_campaign(code).aids.values():
            for parameter in aid.dated.values():
                assert all(entry.reference.strip() for entry in parameter.values)


def test_deadline_2021_is_end_of_31_december_paris():
    params = load_campaign("pair-2021")
    assert params.deadline == datetime.fromisoformat("2022-01-01T00:00:00+01:00")
    assert params.last_day == date(2021, 12, 31)
    assert params.before_deadline(datetime.fromisoformat("2021-12-31T23:59:59+01:00"))
    assert not params.before_deadline(datetime.fromisoformat("2022-01-01T00:00:00+01:00"))


def test_demo_differs_only_by_dates_and_its_assumed_programme_envelope():
    """The guide's campaign has no programme envelope (the guide sets none: an invented amount
    must not pass for the Region's vote); the fictional demo campaign carries an assumption."""
    pair, demo = load_campaign("pair-2021"), load_campaign("demo")
    assert all("programme_amount" not in aid.dated for aid in pair.aids.values())
    assert {n: aid.dated["programme_amount"].value_at(date(2027, 1, 1)) for n, aid in demo.aids.items()} == {
        1: Decimal("500000.00"), 2: Decimal("1500000.00"), 3: Decimal("1500000.00"),
        4: Decimal("2000000.00"), 5: Decimal("1000000.00")}
    without_envelope = {n: {k: v for k, v in aid.dated.items() if k != "programme_amount"}
                        for n, aid in demo.aids.items()}
    assert without_envelope == {n: dict(aid.dated) for n, aid in pair.aids.items()}
    assert {n: (a.title, a.cap_scope) for n, a in demo.aids.items()} == \
        {n: (a.title, a.cap_scope) for n, a in pair.aids.items()}
    assert demo.opens_at == datetime.fromisoformat("2026-01-01T00:00:00+01:00")
    assert demo.deadline == datetime.fromisoformat("2027-07-01T00:00:00+02:00")
    assert demo.last_day == date(2027, 6, 30)
    assert (demo.code, demo.reference_prefix) != (pair.code, pair.reference_prefix)


def test_value_at_uses_the_paris_date():
    p = DatedParameter("x", (DatedValue(date(2021, 1, 1), "old", "ref"),
                             DatedValue(date(2021, 7, 1), "new", "ref")))
    assert p.value_at(datetime.fromisoformat("2021-06-30T23:59:59+02:00")) == "old"
    # 22:30 UTC on 30 June is 00:30 on 1 July in Paris: the new value is in force.
    assert p.value_at(datetime.fromisoformat("2021-06-30T22:30:00+00:00")) == "new"
    assert p.value_at(date(2030, 1, 1)) == "new"
    with pytest.raises(ParameterError, match="no value in force on 2020-12-31"):
        p.value_at(date(2020, 12, 31))
    with pytest.raises(ValueError, match="timezone-aware"):
        p.value_at(datetime(2021, 6, 1))


def test_unknown_campaign():
    for code in ("pair-2099", "../pair-2021", "", "PAIR-2021"):
        with pytest.raises(UnknownCampaignError):
            load_campaign(code)


# --- malformed files --------------------------------------------------------------------------

def _raw() -> dict:
    return yaml.load(_text("pair-2021"), Loader=_Loader)  # noqa: S506


def _set(path: list, value):
    raw = _raw()
    target = raw
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return raw


_DELETE = object()
V = "2021-01-01"

MALFORMED = [
    ("unknown-top-key", ["colour"], "blue", "(top level): unknown key(s): colour"),
    ("missing-top-key", ["deadline"], _DELETE, "(top level): missing key(s): deadline"),
    ("unknown-aid-key", [ "aids", 2, "plafond"], {}, "aids.2: unknown key(s): plafond"),
    ("missing-aid-key", ["aids", 2, "cap_amount"], _DELETE, "aids.2: missing key(s): cap_amount"),
    ("float-rate", ["aids", 2, "rate", V, "value"], 0.4,
     "aids.2.rate.2021-01-01.value: float 0.4 is not allowed"),
    ("float-amount", ["aids", 4, "cap_amount", V, "value"], 40000.0, "aids.4.cap_amount"),
    ("int-amount", ["aids", 4, "cap_amount", V, "value"], 40000, "expected a non-negative decimal"),
    ("non-decimal", ["aids", 2, "cap_amount", V, "value"], "trente mille",
     "aids.2.cap_amount.2021-01-01.value: expected a non-negative decimal string"),
    ("negative-amount", ["aids", 2, "cap_amount", V, "value"], "-1.00", "aids.2.cap_amount"),
    ("three-decimals", ["aids", 2, "cap_amount", V, "value"], "1.001", "at most 2 decimal places"),
    ("rate-above-one", ["aids", 2, "rate", V, "value"], "1.40", "a rate is at most 1"),
    ("unknown-category", ["aids", 2, "eligible_categories", V, "value"], ["equipement", "mobilier"],
     "aids.2.eligible_categories.2021-01-01.value[1]: unknown value 'mobilier'"),
    ("unknown-kind", ["aids", 4, "beneficiary_kinds", V, "value"], ["epci", "departement"],
     "unknown value 'departement'"),
    ("unknown-scope", ["aids", 4, "cap_scope"], "region", "aids.4.cap_scope: unknown value 'region'"),
    ("unknown-basis", ["aids", 4, "population_basis", V, "value"], "departement", "population_basis"),
    ("missing-reference", ["aids", 2, "rate", V, "reference"], _DELETE, "missing key(s): reference"),
    ("empty-reference", ["aids", 2, "rate", V, "reference"], " ", "expected a non-empty string"),
    ("bad-effective-date", ["aids", 2, "rate"], {"2021-13-01": {"value": "0.40", "reference": "r"}},
     "aids.2.rate.2021-13-01: not a valid date"),
    ("value-not-in-force-at-opening", ["aids", 2, "rate"],
     {"2021-02-01": {"value": "0.40", "reference": "r"}}, "no value in force when the campaign opens"),
    ("rate-and-packs", ["aids", 2, "packs"], _raw()["aids"][1]["packs"], "exactly one of rate"),
    ("neither-rate-nor-packs", ["aids", 2, "rate"], _DELETE, "exactly one of rate"),
    ("pack-amount-float", ["aids", 1, "packs", V, "value", 2, "amount"], 500.0, "packs.2021-01-01.value.2.amount"),
    ("pack-unknown-key", ["aids", 1, "packs", V, "value", 2, "price"], "1.00", "unknown key(s): price"),
    ("aid-6", ["aids", 6], copy.deepcopy(_raw()["aids"][2]), "aids.6: aids are numbered 1 to 5"),
    ("naive-deadline", ["deadline", "value"], "2022-01-01T00:00:00", "needs a UTC offset"),
    ("deadline-not-midnight", ["deadline", "value"], "2021-12-31T18:00:00+01:00", "midnight"),
    ("deadline-before-opening", ["deadline", "value"], "2020-01-01T00:00:00+01:00", "after opens_at"),
    ("bad-code", ["code"], "pair 2021", "code: 'pair 2021'"),
    ("threshold-as-string", ["aids", 1, "population_below", V, "value"], "1000", "expected an integer"),
    ("ville-centre-not-bool", ["aids", 5, "ville_centre_only", V, "value"], "yes", "true or false"),
]


@pytest.mark.parametrize(("path", "value", "message"), [m[1:] for m in MALFORMED],
                         ids=[m[0] for m in MALFORMED])
def test_malformed_file_is_refused(path, value, message):
    text = yaml.safe_dump(_set(path, value), allow_unicode=True)
    with pytest.raises(ParameterError) as error:
        parse_campaign(text, "parameters/broken.yaml")
    assert str(error.value).startswith("parameters/broken.yaml: ")
    assert message in str(error.value)


def test_the_unmodified_file_round_trips():
    assert parse_campaign(yaml.safe_dump(_raw(), allow_unicode=True), "x").aids == \
        load_campaign("pair-2021").aids


def test_unquoted_decimal_in_yaml_is_a_float_and_refused():
    text = _text("pair-2021").replace('value: "0.40"', "value: 0.40", 1)
    with pytest.raises(ParameterError, match=r"aids\.2\.rate\.2021-01-01\.value: float 0\.4"):
        parse_campaign(text, "parameters/pair-2021.yaml")


def test_duplicate_key_is_refused():
    text = _text("pair-2021").replace("code: pair-2021", "code: pair-2021\ncode: demo", 1)
    with pytest.raises(ParameterError, match="duplicate key 'code'"):
        parse_campaign(text, "parameters/pair-2021.yaml")


def test_invalid_yaml_is_refused():
    with pytest.raises(ParameterError, match="parameters/x.yaml: invalid YAML"):
        parse_campaign("code: [unclosed", "parameters/x.yaml")


def test_code_must_match_file_name():
    with pytest.raises(ParameterError, match="equal the file name"):
        parse_campaign(_text("demo"), "parameters/pair-2021.yaml", expected_code="pair-2021")
