"""The simulator: the engine over a sequence of dossiers ("what if we granted these?").

Dossiers are evaluated in order; each eligible one is granted its amount, so later dossiers see
the cumulated consumption of their envelope (campaign, aid, cap scope) and, for aid 1, the packs
already granted to the commune. The JSON input and output formats are documented in
docs/rules.md and are a stable API (the same payload is served over HTTP).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from instruction.rules.engine import cap_scope, evaluate
from instruction.rules.model import CATEGORIES, Applicant, Consumption, Decision, ExpenseLine
from instruction.rules.money import parse_plain_decimal, to_cents
from instruction.rules.parameters import (
    CampaignParameters,
    ParameterError,
    UnknownCampaignError,
    available_campaigns,
    load_campaign,
)

BENEFICIARY_KEYS = ("commune", "epci", "sivos")
_DOSSIER_KEYS = {"ref", "aid", "beneficiary", "submitted_at", "expenses"}
_EXPENSE_KEYS = {"category", "amount_ht", "label", "pack", "months"}

Resolver = Callable[[dict], Applicant]
InitialConsumption = Callable[[str, int, str], Consumption]


class SimulationInputError(ValueError):
    """Invalid simulator input; the message (French) names the dossier and the field."""


def parse_simulation_json(text: str | bytes) -> Any:
    """Parse JSON keeping every number exact (decimals become Decimal, never float)."""
    def no_duplicates(pairs):
        result = {}
        for key, value in pairs:
            if key in result:
                raise SimulationInputError(f"JSON invalide : clé « {key} » en double.")
            result[key] = value
        return result

    def no_constant(name):
        raise SimulationInputError(f"JSON invalide : {name} n'est pas un nombre accepté.")

    try:
        return json.loads(text, parse_float=Decimal, parse_constant=no_constant,
                          object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as error:
        raise SimulationInputError(f"JSON invalide : {error.msg} (ligne {error.lineno}, colonne "
                                   f"{error.colno}).") from None
    except UnicodeDecodeError:
        raise SimulationInputError("JSON invalide : le texte n'est pas en UTF-8.") from None


def render_simulation_json(result: dict) -> str:
    return "".join(simulation_json_chunks(result))


def simulation_json_chunks(result: dict) -> Iterator[str]:
    """The output text in pieces, one dossier per line: each piece comes from the C encoder (an
    indented ``json.dumps`` falls back to the pure-Python one, which took half the time of a large
    simulation and held the whole text as a list of small strings)."""
    head = {key: value for key, value in result.items() if key != "dossiers"}
    yield json.dumps(head, ensure_ascii=False)[:-1] + (', "dossiers": [' if head else '{"dossiers": [')
    for index, dossier in enumerate(result["dossiers"]):
        yield ("\n  " if index == 0 else ",\n  ") + json.dumps(dossier, ensure_ascii=False)
    yield "\n]}\n" if result["dossiers"] else "]}\n"


def _money(value: Decimal) -> str:
    return format(to_cents(value), "f")


def decision_as_dict(decision: Decision) -> dict:
    """The JSON form of a decision (amounts as strings with two decimals)."""
    return {
        "eligible": decision.eligible,
        "amount": _money(decision.amount),
        "eligible_base": _money(decision.eligible_base),
        "computed_amount": _money(decision.computed_amount),
        "packs_granted": sorted(decision.packs_granted),
        "findings": [{"code": f.code, "ok": f.ok, "blocking": f.blocking, "message": f.message}
                     for f in decision.findings],
        "cap": {
            "scope": decision.cap.scope,
            "limit": _money(decision.cap.limit),
            "consumed_before": _money(decision.cap.consumed_before),
            "consumed_after": _money(decision.cap.consumed_after),
        },
        "parameters_version": decision.parameters_version,
    }


class _Input:
    """Validation of one part of the payload; every error names where it is."""

    def __init__(self, where: str):
        self.where = where

    def error(self, field: str, problem: str) -> SimulationInputError:
        prefix = f"{self.where} : {field}" if field else self.where
        return SimulationInputError(f"{prefix} : {problem}")

    def object(self, field: str, raw: Any, required: set[str], allowed: set[str]) -> dict:
        if not isinstance(raw, dict):
            raise self.error(field, "un objet JSON est attendu.")
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise self.error(field, f"champ(s) inconnu(s) : {', '.join(unknown)}.")
        missing = sorted(required - set(raw))
        if missing:
            raise self.error(field, f"champ(s) manquant(s) : {', '.join(missing)}.")
        return raw

    def text(self, field: str, raw: Any) -> str:
        if not isinstance(raw, str) or not raw.strip():
            raise self.error(field, f"une chaîne non vide est attendue, reçu {_show(raw)}.")
        return raw

    def positive_int(self, field: str, raw: Any) -> int:
        if type(raw) is not int or raw < 1:
            raise self.error(field, f"un entier positif est attendu, reçu {_show(raw)}.")
        return raw

    def amount(self, field: str, raw: Any) -> Decimal:
        if type(raw) is int and raw >= 0:
            return Decimal(raw).quantize(Decimal("0.01"))
        if isinstance(raw, Decimal | float):
            raise self.error(field, f"montant {_show(raw)} refusé : un montant décimal s'écrit "
                                    f"entre guillemets, par exemple \"1800.00\" (un nombre "
                                    f"décimal JSON n'est pas accepté).")
        try:
            return parse_plain_decimal(raw, max_places=2).quantize(Decimal("0.01"))
        except ValueError:
            raise self.error(field, f"montant {_show(raw)} invalide : une chaîne décimale "
                                    f"positive avec au plus deux décimales est attendue, par "
                                    f"exemple \"1800.00\".") from None

    def instant(self, field: str, raw: Any) -> datetime:
        try:
            value = datetime.fromisoformat(self.text(field, raw))
        except ValueError:
            raise self.error(field, f"date {_show(raw)} invalide : format ISO 8601 attendu, par "
                                    f"exemple \"2021-06-01T10:00:00+02:00\".") from None
        if value.utcoffset() is None:
            raise self.error(field, f"date {_show(raw)} sans décalage horaire : ajouter par "
                                    f"exemple +01:00 (heure d'hiver) ou +02:00 (heure d'été).")
        return value


def _show(raw: Any) -> str:
    return json.dumps(str(raw) if isinstance(raw, Decimal) else raw, ensure_ascii=False,
                      default=str)


def _beneficiary(check: _Input, raw: Any) -> dict:
    if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in BENEFICIARY_KEYS:
        raise check.error("beneficiary", "un objet avec une seule clé parmi commune, epci, "
                                         "sivos est attendu, par exemple {\"commune\": \"21001\"}.")
    (kind, value), = raw.items()
    if kind == "sivos" and isinstance(value, dict):
        check.object("beneficiary.sivos", value, {"name", "epci"}, {"name", "epci"})
        check.text("beneficiary.sivos.name", value["name"])
        check.text("beneficiary.sivos.epci", value["epci"])
    else:
        check.text(f"beneficiary.{kind}", value)
    return raw


def _expense(check: _Input, field: str, raw: Any, aid: int, pack_numbers: tuple[int, ...]):
    check.object(field, raw, {"category", "amount_ht"}, _EXPENSE_KEYS)
    category = raw["category"]
    if category not in CATEGORIES:
        raise check.error(f"{field}.category", f"catégorie {_show(category)} inconnue (catégories "
                                               f": {', '.join(CATEGORIES)}).")
    label = raw.get("label", "")
    if not isinstance(label, str):
        raise check.error(f"{field}.label", "une chaîne est attendue.")
    pack = raw.get("pack")
    if pack is not None:
        if not pack_numbers:
            raise check.error(f"{field}.pack", f"l'aide {aid} ne fonctionne pas par packs.")
        if type(pack) is not int or pack not in pack_numbers:
            numbers = ", ".join(map(str, pack_numbers))
            raise check.error(f"{field}.pack", f"pack {_show(pack)} inconnu (packs de l'aide "
                                               f"{aid} : {numbers}).")
    months = raw.get("months")
    if months is not None:
        check.positive_int(f"{field}.months", months)
        if category != "licence":
            raise check.error(f"{field}.months", "la durée en mois ne concerne que les licences.")
    return ExpenseLine(category=category, amount_ht=check.amount(f"{field}.amount_ht",
                                                                 raw["amount_ht"]),
                       label=label, pack=pack, months=months)


def _campaign(payload: Any, load: Callable[[str], CampaignParameters]) -> CampaignParameters:
    check = _Input("entrée")
    check.object("", payload, {"campaign", "dossiers"}, {"campaign", "dossiers"})
    code = check.text("campaign", payload["campaign"])
    try:
        return load(code)
    except (UnknownCampaignError, LookupError):
        known = ", ".join(available_campaigns())
        raise check.error("campaign", f"campagne inconnue « {code} » (campagnes disponibles : "
                                      f"{known}).") from None
    except ParameterError as error:  # a broken parameter file is a bug, not bad input
        raise RuntimeError(str(error)) from error


def simulate(payload: Any, resolve: Resolver, load: Callable[[str], CampaignParameters] = load_campaign,
             initial: InitialConsumption | None = None) -> dict:
    """Evaluate the payload's dossiers in order; return the JSON-ready result.

    ``resolve(beneficiary)`` is given the dossier's "beneficiary" object, already checked to be
    one of {"commune": INSEE}, {"epci": SIREN}, {"sivos": SIREN} or
    {"sivos": {"name": str, "epci": SIREN}} (an ad hoc SIVOS attached to that EPCI). It returns
    the Applicant (population, EPCI and its population, ville centre flag, SIVOS attachment) and
    raises SimulationInputError with a French message for an unknown beneficiary.

    ``initial(campaign_code, aid, scope)`` gives the consumption of an envelope before the
    simulation (e.g. from the database); by default every envelope starts empty.
    Raises SimulationInputError on invalid input, naming the dossier and the field.
    """
    params = _campaign(payload, load)
    dossiers = payload["dossiers"]
    if not isinstance(dossiers, list):
        raise SimulationInputError("entrée : dossiers : une liste de dossiers est attendue.")
    envelopes: dict[tuple[int, str], Consumption] = {}
    results = []
    for index, raw in enumerate(dossiers):
        check = _Input(f"dossiers[{index}]")
        ref = raw.get("ref") if isinstance(raw, dict) else None
        if ref is not None:
            check.where += f" (ref « {check.text('ref', ref)} »)"
        check.object("", raw, {"aid", "beneficiary", "submitted_at", "expenses"}, _DOSSIER_KEYS)
        aid = raw["aid"]
        if type(aid) is not int or aid not in params.aids:
            known = ", ".join(map(str, params.aids))
            raise check.error("aid", f"aide {_show(aid)} inconnue (aides : {known}).")
        submitted_at = check.instant("submitted_at", raw["submitted_at"])
        rules = params.rules(aid, max(submitted_at, params.opens_at))
        pack_numbers = tuple(p.number for p in rules.packs)
        expenses = raw["expenses"]
        if not isinstance(expenses, list):
            raise check.error("expenses", "une liste de dépenses est attendue.")
        lines = [_expense(check, f"expenses[{i}]", line, aid, pack_numbers)
                 for i, line in enumerate(expenses)]
        beneficiary = _beneficiary(check, raw["beneficiary"])
        try:
            applicant = resolve(beneficiary)
        except SimulationInputError as error:
            raise check.error("beneficiary", str(error)) from None

        try:
            scope = cap_scope(applicant, aid, params)
        except ValueError:
            scope = ""
        key = (aid, scope)
        if key not in envelopes:
            start = initial(params.code, aid, scope) if initial and scope else None
            envelopes[key] = start or Consumption()
        before = envelopes[key]
        decision = evaluate(applicant, aid, lines, submitted_at, params, before)
        if decision.eligible:
            envelopes[key] = Consumption(decision.cap.consumed_after,
                                         before.packs_granted | decision.packs_granted)
        results.append({
            "ref": ref,
            "aid": aid,
            "beneficiary": {"kind": applicant.kind, "id": applicant.id, "name": applicant.name},
            **decision_as_dict(decision),
        })
    return {"campaign": params.code, "parameters_version": params.version, "dossiers": results}
