"""The dossier lifecycle: ONE table of transitions, the single source of truth.

Each transition names its verb, the states it leaves from, the state it reaches, the roles allowed,
its guards (each returns a French reason when the action is unavailable), whether a reason must be
given, and who is notified. Services (``instruction.dossiers.services``) are the only code that
applies a transition; the UI asks ``available_actions`` what to show.

Every other state rule of the product (which states are editable, pending, consuming, closed,
waiting for an instructor, shown in which queue tab, how the demo reaches a state) is a named set
derived below from this table: no other module spells out a list of states.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from instruction.dossiers.models import STATES, Dossier
from instruction.rules.parameters import window_problem

SYSTEM = "system"  # the worker, acting without a user


@dataclass(frozen=True)
class Context:
    """Who acts and when: guards never read a clock of their own."""

    role: str
    now: datetime
    user_id: int | None = None
    collectivite_id: int | None = None


Guard = Callable[[Dossier, Context], str | None]


def campaign_window_problem(campaign, now: datetime) -> str | None:
    """Why nothing can be created or submitted in ``campaign`` at ``now`` (French), or None: the
    one deadline rule of the product (drafts, submission, the portal's banners)."""
    return window_problem(campaign.opens_at, campaign.deadline_at, now)


def deadline_of(dossier: Dossier) -> datetime:
    """The first instant at which this dossier can no longer be submitted: the campaign's deadline,
    or the later one an admin granted this dossier alone (``extended_deadline_at``). The submit
    guard, the rule evaluation, the portal and the expiry job all use it."""
    campaign_deadline = dossier.campaign.deadline_at
    extended = dossier.extended_deadline_at
    return extended if extended is not None and extended > campaign_deadline else campaign_deadline


def before_deadline(dossier: Dossier, ctx: Context) -> str | None:
    return window_problem(dossier.campaign.opens_at, deadline_of(dossier), ctx.now)


def not_taken_by_actor(dossier: Dossier, ctx: Context) -> str | None:
    if ctx.user_id is not None and dossier.assigned_to_id == ctx.user_id:
        return "Vous avez déjà ce dossier en charge."
    return None


def after_deadline(dossier: Dossier, ctx: Context) -> str | None:
    if ctx.now < deadline_of(dossier):
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
    if any(p.cancelled_at is None for p in dossier.payments):
        return "Des versements ont déjà été enregistrés sur ce dossier."
    return None


def has_instalment(dossier: Dossier, ctx: Context) -> str | None:
    if not any(p.cancelled_at is None for p in dossier.payments):
        return "Aucun acompte n'a été versé sur ce dossier."
    return None


def has_payment(dossier: Dossier, ctx: Context) -> str | None:
    if not any(p.cancelled_at is None for p in dossier.payments):
        return "Aucun versement à annuler sur ce dossier."
    return None


@dataclass(frozen=True)
class Transition:
    action: str
    sources: tuple[str, ...]
    target: str | None  # None: the dossier stays in its state (taking it)
    roles: tuple[str, ...]
    label: str
    guards: tuple[Guard, ...] = ()
    needs_reason: bool = False
    # "applicants" (agents of the collectivité), "assigned" (instructor), "team" (the assignee and
    # the followers, or the instructors when it has neither)
    notify: tuple[str, ...] = ()
    style: str = "primary"
    closes: bool = False  # the target state is final for the applicant (``closed_at`` is set)
    listed: bool = True  # offered among the actions of the dossier page
    releases: bool = False  # the target holds nothing of the envelope any more (a lapsed grant)

    def allows_role(self, ctx: Context) -> bool:
        return ctx.role in self.roles

    def target_from(self, state: str) -> str:
        return self.target or state


STAFF = ("instructor", "admin")
INITIAL_STATE = "draft"  # created by ``services.create_draft``; only a deadline extension leads back to it
# Staff never see drafts: a dossier belongs to its applicant until it is submitted.
VISIBLE_STATES = tuple(s for s in STATES if s != INITIAL_STATE)

TRANSITIONS: dict[str, Transition] = {t.action: t for t in (
    Transition("submit", ("draft",), "received", ("applicant",), "Déposer le dossier",
               guards=(before_deadline, has_lines, every_line_has_a_document), notify=("applicants",)),
    Transition("request_documents", ("received", "eligible"), "incomplete", STAFF,
               "Demander des pièces", needs_reason=True, notify=("applicants",), style="warning"),
    Transition("resubmit", ("incomplete",), "received", ("applicant",), "Renvoyer le dossier complété",
               guards=(has_lines, every_line_has_a_document), notify=("team",)),
    Transition("declare_eligible", ("received",), "eligible", STAFF, "Déclarer éligible",
               notify=("applicants",), style="success"),
    Transition("declare_ineligible", ("received", "eligible"), "ineligible", STAFF,
               "Déclarer inéligible", needs_reason=True, notify=("applicants",), style="danger",
               closes=True),
    Transition("grant", ("eligible",), "granted", STAFF, "Attribuer la subvention",
               notify=("applicants",), style="success"),
    Transition("refuse", ("received", "eligible"), "refused", STAFF, "Refuser",
               needs_reason=True, notify=("applicants",), style="danger", closes=True),
    Transition("record_payment", ("granted",), "granted", ("finance", "admin"),
               "Enregistrer un versement partiel", notify=("applicants",)),
    Transition("record_final_payment", ("granted",), "paid", ("finance", "admin"),
               "Enregistrer le versement final", notify=("applicants",), style="success", closes=True),
    Transition("cancel_payment", ("granted", "paid"), "granted", ("finance", "admin"),
               "Annuler le versement", guards=(has_payment,), needs_reason=True, notify=("applicants",),
               style="danger", listed=False),
    # Payment requests (instruction.payment_requests): audited and notified, the state stays.
    Transition("send_payment_request", ("granted",), None, ("applicant",), "Envoyer la demande de versement",
               notify=("applicants", "finance"), listed=False),
    Transition("return_payment_request", ("granted",), None, ("finance", "admin"),
               "Renvoyer la demande de versement", needs_reason=True, notify=("applicants",),
               style="warning", listed=False),
    # Caducité: the balance was not asked in time (the nightly job). Without any payment the grant
    # lapses entirely; after instalments the dossier is closed at what was paid.
    Transition("lapse", ("granted",), "expired", (SYSTEM,), "Constater la caducité de la subvention",
               guards=(no_payment_recorded,), notify=("applicants",), style="secondary", closes=True,
               listed=False, releases=True),
    Transition("lapse_after_instalments", ("granted",), "paid", (SYSTEM,),
               "Constater la caducité du solde", guards=(has_instalment,), notify=("applicants",),
               style="secondary", closes=True, listed=False),
    Transition("withdraw", ("received", "incomplete", "eligible"), "withdrawn", ("applicant",),
               "Retirer le dossier", needs_reason=True, notify=("team", "applicants"), style="danger", closes=True),
    Transition("expire", ("draft",), "expired", (SYSTEM, "admin"), "Clore (date limite dépassée)",
               guards=(after_deadline,), notify=("applicants",), style="secondary", closes=True,
               listed=False),
    Transition("cancel_grant", ("granted",), "eligible", ("admin",), "Annuler l'attribution",
               guards=(no_payment_recorded,), needs_reason=True, notify=("applicants", "assigned"),
               style="danger"),
    Transition("reopen", ("ineligible", "refused"), "received", ("admin",), "Rouvrir l'instruction",
               needs_reason=True, notify=("applicants", "assigned"), style="secondary"),
    # "Je m'en occupe": no state change, but audited, and refused if the state changed meanwhile.
    Transition("assign", VISIBLE_STATES, None, STAFF, "Je m'en occupe", guards=(not_taken_by_actor,),
               listed=False),
    # From the campaign's administration page, for one dossier (an expired draft becomes a draft).
    Transition("extend_deadline", ("draft", "expired"), "draft", ("admin",),
               "Prolonger la date limite de ce dossier", needs_reason=True, notify=("applicants",),
               style="secondary", listed=False),
)}


# --- the state rules, derived from the table ---------------------------------------------------


def _ordered(states: Iterable[str]) -> tuple[str, ...]:
    """``states`` in the lifecycle order of ``STATES`` (stable for menus, tabs and SQL)."""
    wanted = set(states)
    return tuple(s for s in STATES if s in wanted)


def sources_of(*actions: str) -> tuple[str, ...]:
    return _ordered(s for action in actions for s in TRANSITIONS[action].sources)


def _moves() -> list[Transition]:
    return [t for t in TRANSITIONS.values() if t.target is not None]


def _consuming() -> tuple[str, ...]:
    """From the grant onward, until a transition leads back to where a grant can be decided."""
    grant = TRANSITIONS["grant"]
    found = {str(grant.target)}
    while True:
        more = {str(t.target) for t in _moves()
                if found & set(t.sources) and t.target not in grant.sources and not t.releases}
        if more <= found:
            return _ordered(found)
        found |= more


# The applicant may change lines and documents where they (re)submit them.
EDITABLE_STATES = sources_of("submit", "resubmit")
# Final for the applicant: nothing moves the dossier on except an admin's reopening.
CLOSED_STATES = _ordered(str(t.target) for t in _moves() if t.closes)
# The grant's amount is committed to the envelope.
CONSUMING_STATES = _consuming()
# Submitted, neither closed nor granted: their demand is pending on the envelope.
PENDING_STATES = _ordered(set(VISIBLE_STATES) - set(CLOSED_STATES) - set(CONSUMING_STATES))
# Pending and waiting for an instructor (not for the applicant): the digest's "waiting".
WAITING_STATES = _ordered(s for s in PENDING_STATES for t in _moves()
                          if s in t.sources and "instructor" in t.roles)
# Who may take a dossier.
ASSIGNABLE_ROLES = TRANSITIONS["assign"].roles


def path_to(state: str) -> list[str]:
    """The shortest list of verbs that brings a new draft to ``state`` (the demo, the factories)."""
    paths: dict[str, list[str]] = {INITIAL_STATE: []}
    frontier = [INITIAL_STATE]
    while frontier:
        following = []
        for current in frontier:
            for t in _moves():
                target = t.target_from(current)
                if current in t.sources and target not in paths:
                    paths[target] = [*paths[current], t.action]
                    following.append(target)
        frontier = following
    return paths[state]


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
        if t.allows_role(ctx) and dossier.state in t.sources and t.listed
    ]
