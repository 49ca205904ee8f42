"""Evaluate one dossier: eligibility, amount and cap, each condition explained in French.

The algorithm and every finding code are documented in docs/rules.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext

from instruction.rules.formatting import (
    format_date_fr,
    format_euros,
    format_integer,
    format_percent,
)
from instruction.rules.model import (
    Applicant,
    CapState,
    Consumption,
    Decision,
    ExpenseLine,
    Finding,
)
from instruction.rules.money import ZERO, round_down
from instruction.rules.parameters import (
    AidRules,
    CampaignParameters,
    deadline_problem,
    opening_problem,
)

CATEGORY_LABELS = {"equipement": "équipement", "logiciel": "logiciel", "licence": "licence",
                   "cablage": "travaux de câblage"}
_KIND_PLURALS = {"commune": "communes", "epci": "EPCI", "sivos": "SIVOS"}
_KIND_ONE = {"commune": "une commune", "epci": "un EPCI", "sivos": "un SIVOS"}


def cap_scope(applicant: Applicant, aid: int, params: CampaignParameters) -> str:
    """The key of the envelope a dossier consumes, e.g. "epci-territoire:200000925".

    The key is "<scope kind>:<id>": "commune:<INSEE>" for aid 1, "<kind>:<EPCI SIREN>" otherwise.
    An envelope is identified by (campaign, aid, key). ValueError if the key cannot be built
    (a non-commune for a commune scope, an applicant without EPCI for an EPCI scope).
    """
    kind = params.aid(aid).cap_scope
    if kind == "commune":
        if applicant.kind != "commune":
            raise ValueError(f"the cap scope of aid {aid} is a commune, not {applicant.kind}")
        return f"commune:{applicant.id}"
    if applicant.epci_siren is None:
        raise ValueError(f"{applicant.kind} {applicant.id} is attached to no EPCI")
    return f"{kind}:{applicant.epci_siren}"


# --- French wording --------------------------------------------------------------------------


def _designation(applicant: Applicant) -> str:
    """'la commune X', "l'EPCI X", 'le SIVOS X'."""
    article = {"commune": "la commune", "epci": "l'EPCI", "sivos": "le SIVOS"}[applicant.kind]
    if applicant.kind == "sivos" and applicant.name.upper().startswith("SIVOS"):
        article = "le"  # "le SIVOS des Trois Vallées", not "le SIVOS SIVOS des Trois Vallées"
    return f"{article} {applicant.name}"


def _epci(applicant: Applicant) -> str:
    return f"l'EPCI {applicant.epci_name or applicant.epci_siren}"


def _of(designation: str) -> str:
    """'de la commune X', "de l'EPCI X", 'du SIVOS X'."""
    return "du " + designation[3:] if designation.startswith("le ") else "de " + designation


def _to(designation: str) -> str:
    """'à la commune X', "à l'EPCI X", 'au SIVOS X'."""
    return "au " + designation[3:] if designation.startswith("le ") else "à " + designation


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:]


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " et " + items[-1]


def _beneficiaries(rules: AidRules) -> str:
    """'aux EPCI, aux communes et aux SIVOS', 'aux EPCI et aux villes centres'."""
    labels = ["villes centres" if kind == "commune" and rules.ville_centre_only
              else _KIND_PLURALS[kind] for kind in rules.beneficiary_kinds]
    return _join([f"aux {label}" for label in labels])


def _line(index: int, line: ExpenseLine) -> str:
    label = f" « {line.label} »" if line.label else ""
    return (f"Dépense n°{index}{label} ({CATEGORY_LABELS[line.category]}, "
            f"{format_euros(line.amount_ht)} HT)")


def _scope_label(applicant: Applicant, rules: AidRules) -> str:
    if rules.cap_scope == "commune":
        return _of(_designation(applicant))
    if rules.cap_scope == "epci-territoire":
        return f"à l'échelle {_of(_epci(applicant))}, de ses communes et de ses SIVOS"
    if rules.cap_scope == "epci-ville-centre":
        return f"{_of(_epci(applicant))} et de sa ville centre"
    return _of(_epci(applicant))


# --- Checks ----------------------------------------------------------------------------------


def _ok(code: str, message: str, blocking: bool = True) -> Finding:
    return Finding(code, True, message, blocking)


def _fail(code: str, message: str, blocking: bool = True) -> Finding:
    return Finding(code, False, message, blocking)


def _check_dates(submitted_at: datetime, params: CampaignParameters) -> list[Finding]:
    opens = format_date_fr(params.opens_on)
    last = format_date_fr(params.last_day)
    opening = opening_problem(params.opens_at, submitted_at)
    deadline = deadline_problem(params.deadline, submitted_at)
    return [
        _fail("campaign.opened", opening) if opening else
        _ok("campaign.opened", f"Dossier déposé après l'ouverture de la campagne ({opens})."),
        _fail("campaign.deadline", deadline) if deadline else
        _ok("campaign.deadline", f"Dossier déposé dans les délais (date limite : {last})."),
    ]


def _check_beneficiary(applicant: Applicant, rules: AidRules) -> list[Finding]:
    """Kind, ville centre, EPCI attachment and population threshold."""
    aid, who = rules.aid, _designation(applicant)
    if applicant.kind not in rules.beneficiary_kinds:
        return [_fail("beneficiary.kind", f"L'aide {aid} est réservée {_beneficiaries(rules)} : "
                                          f"{_KIND_ONE[applicant.kind]} ne peut pas en bénéficier.")]
    findings = [_ok("beneficiary.kind", f"Bénéficiaire admis pour l'aide {aid} : {who}.")]
    needs_epci = rules.population_basis == "epci" or (
        applicant.kind == "commune" and rules.ville_centre_only)
    if needs_epci and applicant.epci_siren is None:
        attached = "rattachée" if applicant.kind == "commune" else "rattaché"
        findings.append(_fail("beneficiary.epci", f"{_sentence(who)} n'est {attached} à aucun "
                                                  f"EPCI : l'aide {aid} ne peut pas lui être "
                                                  f"attribuée."))
        return findings
    if applicant.kind == "commune" and rules.ville_centre_only:
        if applicant.is_ville_centre:
            findings.append(_ok("beneficiary.ville_centre",
                                f"{_sentence(who)} est la ville centre {_of(_epci(applicant))}."))
        else:
            findings.append(_fail("beneficiary.ville_centre", (
                f"{_sentence(who)} n'est pas la ville centre {_of(_epci(applicant))} : parmi les "
                f"communes, seule la ville centre peut bénéficier de l'aide {aid}.")))
    findings.append(_check_population(applicant, rules))
    return findings


def _check_population(applicant: Applicant, rules: AidRules) -> Finding:
    threshold = format_integer(rules.population_below)
    if rules.population_basis == "applicant":
        subject, population = _designation(applicant), applicant.population
        requirement = (f"l'aide {rules.aid} est réservée {_beneficiaries(rules)} de moins de "
                       f"{threshold} habitants")
    else:
        subject, population = _epci(applicant), applicant.epci_population
        if applicant.kind != "epci":
            name = applicant.epci_name or applicant.epci_siren
            subject = f"l'EPCI de rattachement {_of(_designation(applicant))} ({name})"
        requirement = f"l'aide {rules.aid} exige un EPCI de moins de {threshold} habitants"
    if population is None:
        return _fail("population.unknown", f"Population {_of(subject)} inconnue : le "
                                           f"seuil de moins de {threshold} habitants ne peut pas "
                                           f"être vérifié.")
    count = format_integer(population)
    if population < rules.population_below:
        return _ok("population.threshold", f"{_sentence(subject)} compte {count} habitants "
                                           f"(seuil : moins de {threshold} habitants).")
    return _fail("population.threshold", f"{_sentence(subject)} compte {count} habitants : "
                                         f"{requirement}.")


@dataclass
class _Base:
    """The eligible base: its total and, for an aid with packs, its split per pack."""

    total: Decimal = ZERO
    per_pack: dict[int, Decimal] | None = None


def _scan_lines(lines: tuple[ExpenseLine, ...], rules: AidRules) -> tuple[_Base, list[Finding]]:
    """Keep the eligible part of each line; explain every exclusion or reduction."""
    base = _Base(per_pack={} if rules.packs else None)
    allowed = _join([CATEGORY_LABELS[c] for c in rules.eligible_categories])
    per_line: list[Finding] = []
    for index, line in enumerate(lines, start=1):
        amount = line.amount_ht
        if line.category not in rules.eligible_categories:
            per_line.append(_fail("expense.category", (
                f"{_line(index, line)} exclue : catégorie non éligible à l'aide {rules.aid} "
                f"(catégories éligibles : {allowed})."), blocking=False))
            continue
        if rules.packs and rules.pack(line.pack) is None:
            per_line.append(_fail("expense.pack", (
                f"{_line(index, line)} exclue : elle doit être rattachée à un pack "
                f"({_join([p.label for p in rules.packs])})."), blocking=False))
            continue
        if line.category == "licence" and rules.licence_max_months is not None:
            limit = rules.licence_max_months
            if line.months is None:
                per_line.append(_fail("expense.licence_months", (
                    f"{_line(index, line)} exclue : la durée de la licence (en mois) n'est pas "
                    f"indiquée, alors que seuls {limit} mois sont éligibles."), blocking=False))
                continue
            if line.months > limit:
                # Integer arithmetic on cents: exact, then rounded down.
                amount = Decimal(int(amount * 100) * limit // line.months).scaleb(-2)
                per_line.append(_fail("expense.licence_prorated", (
                    f"{_line(index, line)} : licence de {line.months} mois retenue pour {limit} "
                    f"mois, soit {format_euros(amount)} HT."), blocking=False))
        base.total += amount
        if base.per_pack is not None:
            base.per_pack[line.pack] = base.per_pack.get(line.pack, ZERO) + amount

    findings: list[Finding] = []
    failed = {f.code for f in per_line}
    if lines and "expense.category" not in failed:
        findings.append(_ok("expense.category", f"Toutes les dépenses relèvent des catégories "
                                                f"éligibles à l'aide {rules.aid} ({allowed}).",
                            blocking=False))
    if rules.packs and lines and "expense.pack" not in failed:
        findings.append(_ok("expense.pack", "Chaque dépense éligible est rattachée à un pack.",
                            blocking=False))
    findings += per_line
    if base.total > 0:
        findings.append(_ok("expense.base", f"Base éligible : {format_euros(base.total)} HT."))
    elif lines:
        findings.append(_fail("expense.base", "Aucune dépense éligible : la base éligible est "
                                              "nulle."))
    else:
        findings.append(_fail("expense.base", "Aucune dépense déclarée."))
    return base, findings


def _check_minimum(base: _Base, rules: AidRules) -> list[Finding]:
    if rules.minimum_project_cost is None:
        return []
    cost, minimum = format_euros(base.total), format_euros(rules.minimum_project_cost)
    if base.total >= rules.minimum_project_cost:
        return [_ok("project.minimum_cost", f"Coût du projet de {cost} HT (dépenses éligibles), "
                                            f"au moins égal au minimum de {minimum} HT.")]
    return [_fail("project.minimum_cost", f"Coût du projet de {cost} HT (dépenses éligibles), "
                                          f"inférieur au minimum de {minimum} HT exigé pour "
                                          f"l'aide {rules.aid}.")]


def _compute_packs(base: _Base, rules: AidRules, applicant: Applicant, consumption: Consumption,
                   ) -> tuple[Decimal, frozenset[int], list[Finding]]:
    """Each pack yields min(forfait, its expenses), or nothing if already granted."""
    findings: list[Finding] = []
    total, granted, parts = ZERO, set(), []
    for number, expenses in sorted(base.per_pack.items()):
        pack = rules.pack(number)
        if number in consumption.packs_granted:
            findings.append(_fail("pack.already_granted", (
                f"Le {pack.label} a déjà été attribué {_to(_designation(applicant))} : il ne "
                f"produit aucun montant dans ce dossier."), blocking=False))
            parts.append(f"{pack.label} : {format_euros(ZERO)} (déjà attribué)")
            continue
        value = min(pack.amount, expenses)
        total += value
        if value > 0:
            granted.add(number)
        parts.append(f"{pack.label} : {format_euros(value)} (forfait {format_euros(pack.amount)}, "
                     f"dépenses {format_euros(expenses)} HT)")
    findings.append(_ok("amount.computed", f"Montant calculé : {' ; '.join(parts)} ; total "
                                           f"{format_euros(total)}.", blocking=False))
    if total == 0:
        why = ("les packs demandés ont déjà été attribués à la commune"
               if set(base.per_pack) <= consumption.packs_granted
               else "aucun pack ne produit de montant")
        findings.append(_fail("amount.zero", f"Aucun montant ne peut être attribué : {why}."))
    return total, frozenset(granted), findings


def _compute_rate(base: _Base, rules: AidRules) -> tuple[Decimal, list[Finding]]:
    """base x rate, rounded down to the cent."""
    with localcontext() as context:
        context.prec = 60  # far more digits than any base x rate needs: the product is exact
        exact = base.total * rules.rate
    computed = round_down(exact)
    rounding = "" if computed == exact else " (arrondi au centime inférieur)"
    findings = [_ok("amount.computed", (
        f"Montant calculé : {format_percent(rules.rate)} de {format_euros(base.total)} HT = "
        f"{format_euros(computed)}{rounding}."), blocking=False)]
    if computed == 0:
        findings.append(_fail("amount.zero", "Aucun montant ne peut être attribué : le montant "
                                             "calculé est nul."))
    return computed, findings


def _check_cap(computed: Decimal, limit: Decimal, before: Decimal, where: str) -> tuple[Decimal, Finding]:
    remaining = max(ZERO, limit - before)
    capped = min(computed, remaining)
    cap, used = format_euros(limit), f"déjà consommé : {format_euros(before)}"
    if remaining == 0:
        return ZERO, _fail("cap.reached", (
            f"Le plafond de {cap} {where} est atteint ({used}) : aucun montant ne peut être "
            f"attribué."))
    if capped < computed:
        return capped, _fail("cap.reduced", (
            f"Montant réduit à {format_euros(capped)} : le plafond de {cap} {where} est presque "
            f"atteint ({used})."), blocking=False)
    return capped, _ok("cap.within", (
        f"Le montant de {format_euros(computed)} respecte le plafond de {cap} {where} "
        f"({used})."))


def evaluate(applicant: Applicant, aid: int, lines: Iterable[ExpenseLine], submitted_at: datetime,
             params: CampaignParameters, consumption: Consumption | None = None) -> Decision:
    """Evaluate one dossier against the campaign's rules in force at ``submitted_at``.

    ``consumption`` is what is already consumed in the dossier's envelope (``cap_scope``), for the
    same campaign and aid. Values are read at ``max(submitted_at, opens_at)``.
    """
    if submitted_at.utcoffset() is None:
        raise ValueError("submitted_at must be timezone-aware")
    consumption = consumption or Consumption()
    lines = tuple(lines)
    rules = params.rules(aid, max(submitted_at, params.opens_at))
    try:
        scope = cap_scope(applicant, aid, params)
    except ValueError:
        scope = ""
    if consumption.scope is not None and scope and consumption.scope != scope:
        raise ValueError(f"consumption is for scope {consumption.scope!r}, the dossier's is {scope!r}")

    findings = _check_dates(submitted_at, params) + _check_beneficiary(applicant, rules)
    base, line_findings = _scan_lines(lines, rules)
    findings += line_findings + _check_minimum(base, rules)
    computed, packs = ZERO, frozenset()
    if base.total > 0 and rules.packs:
        computed, packs, amount_findings = _compute_packs(base, rules, applicant, consumption)
        findings += amount_findings
    elif base.total > 0:
        computed, amount_findings = _compute_rate(base, rules)
        findings += amount_findings

    before = consumption.consumed
    cap_limit = rules.cap_amount if consumption.cap_limit is None else consumption.cap_limit
    amount = ZERO
    blocked = any(f.blocking and not f.ok for f in findings)
    if not blocked and not scope:
        findings.append(_fail("cap.scope", "Impossible de déterminer l'enveloppe (plafond) du "
                                           "dossier : le bénéficiaire n'est rattaché à aucun EPCI."))
    elif not blocked:
        amount, finding = _check_cap(computed, cap_limit, before,
                                     _scope_label(applicant, rules))
        findings.append(finding)
    eligible = not any(f.blocking and not f.ok for f in findings) and amount > 0
    if not eligible:
        amount, packs = ZERO, frozenset()
    return Decision(
        eligible=eligible,
        findings=tuple(findings),
        eligible_base=base.total,
        computed_amount=computed,
        amount=amount,
        cap=CapState(scope, cap_limit, before, before + amount),
        packs_granted=packs,
        parameters_version=params.version,
    )
