"""The dossier lifecycle: ONE table of transitions, the single source of truth.

Each transition names its verb, the states it leaves from, the state it reaches, the roles allowed,
its guards (each returns a French reason when the action is unavailable), whether a reason must be
given, and who is notified. Services (``instruction.dossiers.services``) are the only code that
applies a transition; the UI asks ``available_actions`` what to show.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from instruction.dossiers.models import Dossier
from instruction.rules.formatting import format_date_fr
from instruction.rules.parameters import paris_date

SYSTEM = "system"  # the worker, acting without a user


@dataclass(frozen=True)
class Context:
    """Who acts and when: guards never read a clock of their own."""

    role: str
    now: datetime
    user_id: int | None = None
    collectivite_id: int | None = None


Guard = Callable[[Dossier, Context], str | None]


def before_deadline(dossier: Dossier, ctx: Context) -> str | None:
    campaign = dossier.campaign
    if ctx.now < campaign.opens_at:
        return f"La campagne n'est pas encore ouverte (ouverture le {format_date_fr(paris_date(campaign.opens_at))})."
    if ctx.now >= campaign.deadline_at:
        last_day = paris_date(campaign.deadline_at - timedelta(microseconds=1))
        return f"Date limite dépassée : les dépôts étaient possibles jusqu'au {format_date_fr(last_day)} inclus."
    return None


def after_deadline(dossier: Dossier, ctx: Context) -> str | None:
    if ctx.now < dossier.campaign.deadline_at:
        return "La date limite de dépôt n'est pas encore passée."
    return None


def has_lines(dossier: Dossier, ctx: Context) -> str | None:
    return None if dossier.lines else "Ajoutez au moins une ligne de dépense."


def every_line_has_a_document(dossier: Dossier, ctx: Context) -> str | None:
    missing = [line.label for line in dossier.lines if not line.documents]
    if missing:
        return "Joignez une facture ou un devis à chaque ligne de dépense (manquant : " \
               + ", ".join(f"« {label} »" for label in missing) + ")."
    return None


def no_payment_recorded(dossier: Dossier, ctx: Context) -> str | None:
    return "Des versements ont déjà été enregistrés sur ce dossier." if dossier.payments else None


@dataclass(frozen=True)
class Transition:
    action: str
    sources: tuple[str, ...]
    target: str
    roles: tuple[str, ...]
    label: str
    guards: tuple[Guard, ...] = ()
    needs_reason: bool = False
    notify: tuple[str, ...] = ()  # "applicants" (agents of the collectivité), "assigned" (instructor)
    style: str = "primary"

    def allows_role(self, ctx: Context) -> bool:
        return ctx.role in self.roles


STAFF = ("instructor", "admin")

TRANSITIONS: dict[str, Transition] = {t.action: t for t in (
    Transition("submit", ("draft",), "received", ("applicant",), "Déposer le dossier",
               guards=(before_deadline, has_lines, every_line_has_a_document), notify=("applicants",)),
    Transition("request_documents", ("received", "eligible"), "incomplete", STAFF,
               "Demander des pièces", needs_reason=True, notify=("applicants",), style="warning"),
    Transition("resubmit", ("incomplete",), "received", ("applicant",), "Renvoyer le dossier complété",
               guards=(has_lines, every_line_has_a_document), notify=("assigned",)),
    Transition("declare_eligible", ("received",), "eligible", STAFF, "Déclarer éligible",
               notify=("applicants",), style="success"),
    Transition("declare_ineligible", ("received", "eligible"), "ineligible", STAFF,
               "Déclarer inéligible", needs_reason=True, notify=("applicants",), style="danger"),
    Transition("grant", ("eligible",), "granted", STAFF, "Attribuer la subvention",
               notify=("applicants",), style="success"),
    Transition("refuse", ("received", "eligible"), "refused", STAFF, "Refuser",
               needs_reason=True, notify=("applicants",), style="danger"),
    Transition("record_payment", ("granted",), "granted", ("finance", "admin"),
               "Enregistrer un versement partiel", notify=("applicants",)),
    Transition("record_final_payment", ("granted",), "paid", ("finance", "admin"),
               "Enregistrer le versement final", notify=("applicants",), style="success"),
    Transition("withdraw", ("received", "incomplete", "eligible"), "withdrawn", ("applicant",),
               "Retirer le dossier", needs_reason=True, notify=("assigned",), style="danger"),
    Transition("expire", ("draft",), "expired", (SYSTEM, "admin"), "Clore (date limite dépassée)",
               guards=(after_deadline,), notify=("applicants",), style="secondary"),
    Transition("cancel_grant", ("granted",), "eligible", ("admin",), "Annuler l'attribution",
               guards=(no_payment_recorded,), needs_reason=True, notify=("applicants", "assigned"),
               style="danger"),
    Transition("reopen", ("ineligible", "refused"), "received", ("admin",), "Rouvrir l'instruction",
               needs_reason=True, notify=("applicants", "assigned"), style="secondary"),
)}


@dataclass(frozen=True)
class Availability:
    transition: Transition
    reason: str | None  # None: the action can be taken now

    @property
    def allowed(self) -> bool:
        return self.reason is None


def unavailable_reason(transition: Transition, dossier: Dossier, ctx: Context) -> str | None:
    """Why ``transition`` cannot be applied now (French), or None."""
    if dossier.state not in transition.sources:
        return "Cette action n'est pas possible dans l'état actuel du dossier."
    for guard in transition.guards:
        if reason := guard(dossier, ctx):
            return reason
    return None


def available_actions(dossier: Dossier, ctx: Context) -> list[Availability]:
    """The actions of this role from the dossier's state, each with the reason it is unavailable."""
    return [
        Availability(t, unavailable_reason(t, dossier, ctx))
        for t in TRANSITIONS.values()
        if t.allows_role(ctx) and dossier.state in t.sources and t.action != "expire"
    ]
