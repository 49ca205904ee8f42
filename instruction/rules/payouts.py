"""What a payment request (demande de versement) justifies: pure, like the rest of the rules.

The realised expenses (dépenses réalisées, each with its paid invoice) go through the same scan
as the declared ones (categories, packs, licences prorated). For a rate-based aid, the amount
justified is the rate times the eligible realised expenses, rounded down to the cent; for aid 1,
each granted pack yields at most its forfait and at most the realised expenses attached to it.
Never above the grant. What is payable is what is justified less what was already paid; an
instalment (acompte) is further held under a share of the grant, and their number is limited.
A balance (solde) below the grant leaves the rest to be released to the envelope.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, localcontext
from functools import cache
from importlib import resources
from typing import Any

import yaml

from instruction.rules.engine import _scan_lines
from instruction.rules.formatting import format_euros, format_percent
from instruction.rules.model import ExpenseLine, Finding
from instruction.rules.money import ZERO, round_down
from instruction.rules.parameters import AidRules, DatedParameter, _dated, _Loader, _Reader

KINDS = ("acompte", "solde")
KIND_LABELS = {"acompte": "Acompte", "solde": "Solde"}


@dataclass(frozen=True)
class PaymentRules:
    """The payment rules in force at one instant."""

    instalments_max: int  # acomptes before the balance
    instalment_max_share: Decimal  # of the grant, all acomptes together
    # The time limit to ask for the balance is the campaign's ``payment_request_months`` (the grant
    # letter states it; one parameter, one source of truth): ``balance_due_on``.
    reminder_days: tuple[int, ...]  # reminders this many days before the lapse
    references: tuple[tuple[str, str], ...] = ()  # (parameter, its reference)


_CONVERT = {
    "instalments_max": lambda r, p, v: r.integer(p, v, minimum=0),
    "instalment_max_share": lambda r, p, v: _share(r, p, v),
    "reminder_days": lambda r, p, v: _days(r, p, v),
}


def _share(reader: _Reader, path: str, raw: Any) -> Decimal:
    share = reader.decimal(path, raw, 4)
    if share > 1:
        raise reader.error(path, f"a share is at most 1, got {raw!r}")
    return share


def _days(reader: _Reader, path: str, raw: Any) -> tuple[int, ...]:
    if not isinstance(raw, list) or not raw:
        raise reader.error(path, "expected a non-empty list of days")
    return tuple(sorted((reader.integer(f"{path}[{i}]", v) for i, v in enumerate(raw)), reverse=True))


def parse_payment_rules(text: str, source: str) -> dict[str, DatedParameter]:
    reader = _Reader(source)
    raw = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    reader.mapping("(top level)", raw, set(_CONVERT))
    return {name: _dated(reader, name, raw[name], convert) for name, convert in _CONVERT.items()}


@cache
def _packaged() -> dict[str, DatedParameter]:
    resource = resources.files(__package__).joinpath("payments.yaml")
    return parse_payment_rules(resource.read_text(encoding="utf-8"), "payments.yaml")


def payment_rules(instant: datetime | date) -> PaymentRules:
    """The payment rules in force at ``instant`` (for a request: the day of the grant decision)."""
    dated = _packaged()
    values = {name: parameter.value_at(instant) for name, parameter in dated.items()}
    references = tuple((name, parameter.entry_at(instant).reference) for name, parameter in dated.items())
    return PaymentRules(**values, references=references)


def balance_due_on(decided_on: date, months: int) -> date:
    """The last day to ask for the balance: ``months`` after the grant decision, the same day of
    the month (the last day of a shorter month); the grant lapses the day after."""
    index = decided_on.month - 1 + months
    year, month = decided_on.year + index // 12, index % 12 + 1
    return date(year, month, min(decided_on.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Claim:
    """A payment request as the rules see it."""

    kind: str  # acompte | solde
    lines: tuple[ExpenseLine, ...]  # realised expenses, HT
    granted: Decimal
    already_paid: Decimal = ZERO
    instalments_paid: int = 0  # acomptes already paid on the dossier
    packs_granted: frozenset[int] = frozenset()  # aid 1

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown payment request kind {self.kind!r} (expected one of {KINDS})")


@dataclass(frozen=True)
class Payable:
    kind: str
    eligible_base: Decimal  # eligible realised expenses, HT
    justified: Decimal  # what they justify in all, never above the grant
    amount: Decimal  # payable by this request
    released: Decimal  # a balance: what goes back to the envelope once it is paid
    findings: tuple[Finding, ...]

    @property
    def refused(self) -> bool:
        return any(f.blocking and not f.ok for f in self.findings)


def _ok(code: str, message: str) -> Finding:
    return Finding(code=code, ok=True, message=message, blocking=False)


def _fail(code: str, message: str, blocking: bool = False) -> Finding:
    return Finding(code=code, ok=False, message=message, blocking=blocking)


def payable(claim: Claim, aid: AidRules, rules: PaymentRules) -> Payable:
    """The amount a payment request justifies, with every finding in French."""
    base, scanned = _scan_lines(claim.lines, aid)
    findings = [f for f in scanned if f.code != "expense.base"]
    findings.append(_ok("realised.base", f"Dépenses réalisées éligibles : {format_euros(base.total)} HT."))
    if aid.packs:
        parts, justified = [], ZERO
        for pack in aid.packs:
            expenses = (base.per_pack or {}).get(pack.number, ZERO)
            if pack.number not in claim.packs_granted:
                if expenses:
                    findings.append(_fail("realised.pack_not_granted", (
                        f"Les dépenses du {pack.label} ne sont pas retenues : ce pack n'a pas été "
                        f"attribué au dossier.")))
                continue
            value = min(pack.amount, expenses)
            justified += value
            parts.append(f"{pack.label} : {format_euros(value)} (forfait {format_euros(pack.amount)}, "
                         f"dépenses réalisées {format_euros(expenses)} HT)")
            if expenses == 0:
                findings.append(_fail("realised.pack_empty", (
                    f"Aucune dépense réalisée n'est rattachée au {pack.label} : il ne produit rien.")))
        findings.append(_ok("realised.justified", "Montant justifié : " + (" ; ".join(parts) or "aucun pack")
                            + f" ; total {format_euros(justified)}."))
    else:
        with localcontext() as context:
            context.prec = 60
            justified = round_down(base.total * (aid.rate or ZERO))
        findings.append(_ok("realised.justified", (
            f"Montant justifié : {format_percent(aid.rate or ZERO)} de {format_euros(base.total)} HT "
            f"= {format_euros(justified)}.")))
    if justified > claim.granted:
        findings.append(_ok("realised.grant", (
            f"Le montant justifié est ramené au montant attribué, {format_euros(claim.granted)}.")))
        justified = claim.granted
    due = max(ZERO, justified - claim.already_paid)
    if claim.already_paid:
        findings.append(_ok("realised.already_paid", (
            f"Déjà versé : {format_euros(claim.already_paid)} ; reste justifié : {format_euros(due)}.")))
    amount, released = due, ZERO
    if claim.kind == "acompte":
        if claim.instalments_paid >= rules.instalments_max:
            findings.append(_fail("instalment.count", (
                f"Le nombre maximal d'acomptes ({rules.instalments_max}) est atteint : demandez le "
                f"solde."), blocking=True))
            amount = ZERO
        else:
            ceiling = max(ZERO, round_down(claim.granted * rules.instalment_max_share) - claim.already_paid)
            if due > ceiling:
                findings.append(_fail("instalment.share", (
                    f"Les acomptes ne peuvent pas dépasser {format_percent(rules.instalment_max_share)} du "
                    f"montant attribué : acompte limité à {format_euros(ceiling)}.")))
                amount = ceiling
    else:
        released = claim.granted - claim.already_paid - amount
        if released > 0:
            findings.append(_ok("balance.release", (
                f"Solde : {format_euros(released)} non justifiés seront rendus à l'enveloppe.")))
    if amount == 0 and not any(f.blocking and not f.ok for f in findings):
        findings.append(_fail("payable.zero", "Aucun montant n'est justifié par ces dépenses.",
                              blocking=claim.kind == "acompte"))
    findings.append(_ok("payable.amount", f"Montant à verser : {format_euros(amount)}."))
    return Payable(kind=claim.kind, eligible_base=base.total, justified=justified, amount=amount,
                   released=released, findings=tuple(findings))
