"""What the dossier page shows, gathered from the models (no rule and no state change here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from instruction.dossiers.evaluation import evaluate_dossier
from instruction.dossiers.models import Dossier
from instruction.dossiers.workflow import TRANSITIONS

# Audit actions that are not transitions of the table.
EVENT_LABELS = {"create": "Création du brouillon", "assign": "Attribution", "note_added": "Note privée",
                "label_added": "Étiquette ajoutée", "label_removed": "Étiquette retirée"}


def event_label(action: str) -> str:
    if action in TRANSITIONS:
        return TRANSITIONS[action].label
    return EVENT_LABELS.get(action, action)


@dataclass(frozen=True)
class FindingView:
    code: str
    ok: bool
    message: str
    blocking: bool


@dataclass(frozen=True)
class EvaluationSummary:
    """The rule evaluation, frozen on the dossier when it was declared eligible, else live."""

    frozen: bool
    eligible: bool
    findings: list[FindingView]
    eligible_base: Decimal
    computed_amount: Decimal  # before the cap
    amount: Decimal  # after the cap
    cap_scope: str
    cap_limit: Decimal
    consumed_before: Decimal
    consumed_after: Decimal
    packs: list[int]
    parameters_version: str


def evaluation_summary(dossier: Dossier, now: datetime) -> EvaluationSummary:
    frozen = dossier.evaluation
    if frozen:
        cap = frozen["cap"]
        return EvaluationSummary(
            frozen=True, eligible=frozen["eligible"],
            findings=[FindingView(f["code"], f["ok"], f["message"], f["blocking"]) for f in frozen["findings"]],
            eligible_base=Decimal(frozen["eligible_base"]),
            computed_amount=Decimal(frozen["computed_amount"]), amount=Decimal(frozen["amount"]),
            cap_scope=cap["scope"], cap_limit=Decimal(cap["limit"]),
            consumed_before=Decimal(cap["consumed_before"]), consumed_after=Decimal(cap["consumed_after"]),
            packs=list(frozen.get("packs", [])), parameters_version=frozen.get("parameters_version", ""),
        )
    decision = evaluate_dossier(dossier, now)
    return EvaluationSummary(
        frozen=False, eligible=decision.eligible,
        findings=[FindingView(f.code, f.ok, f.message, f.blocking) for f in decision.findings],
        eligible_base=decision.eligible_base, computed_amount=decision.computed_amount,
        amount=decision.amount, cap_scope=decision.cap.scope, cap_limit=decision.cap.limit,
        consumed_before=decision.cap.consumed_before, consumed_after=decision.cap.consumed_after,
        packs=sorted(decision.packs_granted), parameters_version=decision.parameters_version,
    )
