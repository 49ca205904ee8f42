"""Portal operations for applicants: what they may ask for, drafts, expense lines, documents,
estimation. State changes (submit, resubmit, withdraw) stay in ``instruction.dossiers.services``;
these functions only edit a dossier the applicant's collectivité owns while it is editable.

Refusals raise the dossier services' errors (French messages), so ``web.actions.perform`` runs
these operations like any other. Nothing here commits.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from instruction import rules
from instruction.accounts.models import User
from instruction.campaigns.models import Campaign
from instruction.campaigns.services import parameters_of
from instruction.documents import services as documents
from instruction.dossiers import envelopes
from instruction.dossiers import services as dossier_services
from instruction.dossiers.evaluation import (
    applicant_for,
    evaluate_dossier,
)
from instruction.dossiers.models import (
    CATEGORY_LABELS,
    AuditEvent,
    Document,
    Dossier,
    Envelope,
    ExpenseLine,
)
from instruction.dossiers.services import ActionConflict, ActionForbidden, InvalidAction
from instruction.dossiers.workflow import EDITABLE_STATES, TRANSITIONS, campaign_window_problem
from instruction.extensions import db
from instruction.rules.formatting import format_euros, format_percent
from instruction.rules.parameters import AidRules
from instruction.rules.simulator import decision_as_dict
from instruction.storage.files import remove_files
from instruction.territory.models import Collectivite

# Findings that say whether the collectivité itself may ask for an aid (docs/rules.md).
BENEFICIARY_CODES = ("beneficiary.", "population.")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")


# --- which aids can I ask for? -------------------------------------------------------------------


@dataclass
class AidStatus:
    number: int
    title: str
    eligible: bool
    reasons: list[str]
    amount_rule: str
    categories: list[str]
    cap_limit: Decimal
    consumed: Decimal
    scope_label: str
    drafts: list[Dossier] = field(default_factory=list)

    @property
    def remaining(self) -> Decimal:
        return max(Decimal("0.00"), self.cap_limit - self.consumed)


def rules_at(campaign: Campaign, aid: int, at: datetime) -> AidRules:
    params = parameters_of(campaign)
    return params.rules(aid, max(at, params.opens_at))


def beneficiary_reasons(collectivite: Collectivite, campaign: Campaign, aid: int, at: datetime) -> list[str]:
    """Why the collectivité cannot ask for ``aid`` (French), from the rule module; empty if it can."""
    params = parameters_of(campaign)
    decision = rules.evaluate(applicant_for(collectivite), aid, [], max(at, params.opens_at), params)
    return [f.message for f in decision.findings
            if not f.ok and f.blocking and f.code.startswith(BENEFICIARY_CODES)]


def _amount_rule(aid_rules) -> str:
    if aid_rules.packs:
        packs = " ; ".join(f"{p.label} : {format_euros(p.amount)}" for p in aid_rules.packs)
        return f"Forfaits par pack ({packs}), chacun au plus égal aux dépenses du pack"
    text = f"{format_percent(aid_rules.rate)} des dépenses éligibles HT"
    if aid_rules.minimum_project_cost:
        text += f", pour un projet d'au moins {format_euros(aid_rules.minimum_project_cost)} HT"
    return text


def _scope_label(kind: str, collectivite: Collectivite) -> str:
    epci = collectivite if collectivite.kind == "epci" else collectivite.epci
    epci_name = epci.name if epci else "(aucun EPCI)"
    return {
        "commune": f"Plafond propre à la commune {collectivite.name}",
        "epci": f"Plafond de l'EPCI {epci_name}",
        "epci-territoire": f"Plafond commun à l'EPCI {epci_name}, ses communes et ses SIVOS",
        "epci-ville-centre": f"Plafond commun à l'EPCI {epci_name} et à sa ville centre",
    }[kind]


def envelope_of(campaign: Campaign, aid: int, collectivite: Collectivite, at: datetime) -> tuple[Decimal, Decimal]:
    """(cap, consumed) of the envelope the collectivité's dossiers for ``aid`` would consume."""
    params = parameters_of(campaign)
    cap = envelopes.cap_limit(campaign, aid, at)
    try:
        scope = rules.cap_scope(applicant_for(collectivite), aid, params)
    except ValueError:
        return cap, Decimal("0.00")
    row = db.session.scalar(select(Envelope).where(
        Envelope.campaign_id == campaign.id, Envelope.aid_number == aid, Envelope.scope == scope))
    return cap, row.consumed if row is not None else Decimal("0.00")


def aid_overview(collectivite: Collectivite, campaign: Campaign, at: datetime) -> list[AidStatus]:
    params = parameters_of(campaign)
    drafts = list(db.session.scalars(select(Dossier).where(
        Dossier.collectivite_id == collectivite.id, Dossier.campaign_id == campaign.id,
        Dossier.state == "draft").order_by(Dossier.id)))
    overview = []
    for number, aid in params.aids.items():
        aid_rules = rules_at(campaign, number, at)
        reasons = beneficiary_reasons(collectivite, campaign, number, at)
        cap, consumed = envelope_of(campaign, number, collectivite, at)
        overview.append(AidStatus(
            number=number, title=aid.title, eligible=not reasons, reasons=reasons,
            amount_rule=_amount_rule(aid_rules),
            categories=[CATEGORY_LABELS[c].lower() for c in aid_rules.eligible_categories],
            cap_limit=cap, consumed=consumed, scope_label=_scope_label(aid.cap_scope, collectivite),
            drafts=[d for d in drafts if d.aid_number == number]))
    return overview


def window_problem(campaign: Campaign, at: datetime) -> str | None:
    """Why no dossier can be created or submitted now, or None when the campaign is open."""
    return campaign_window_problem(campaign, at)


# --- drafts --------------------------------------------------------------------------------------


def new_client_token() -> str:
    return secrets.token_urlsafe(24)


def _require_applicant(actor: User, collectivite_id: int) -> None:
    if actor is None or actor.role != "applicant":
        raise ActionForbidden("Cette action est réservée aux agents des collectivités.")
    if actor.collectivite_id != collectivite_id:
        raise ActionForbidden("Ce dossier n'appartient pas à votre collectivité.")


def create_draft_once(*, campaign: Campaign, aid_number: int, actor: User, client_token: str,
                      title: str = "", now: datetime) -> tuple[Dossier, bool]:
    """A draft for ``aid_number``, created once per form: the same ``client_token`` again (a double
    click, a reload) returns the dossier it created. Returns (dossier, created)."""
    if actor is None or actor.role != "applicant":
        raise ActionForbidden("Cette action est réservée aux agents des collectivités.")
    if not _TOKEN.fullmatch(client_token or ""):
        raise InvalidAction("Le formulaire est incomplet : rechargez la page puis recommencez.")
    existing = _by_token(client_token)
    if existing is not None:
        _require_applicant(actor, existing.collectivite_id)
        return existing, False
    params = parameters_of(campaign)
    if aid_number not in params.aids:
        raise InvalidAction("Cette aide n'existe pas dans la campagne.")
    if problem := window_problem(campaign, now):
        raise ActionConflict(problem)
    collectivite = actor.applicant_collectivite
    if reasons := beneficiary_reasons(collectivite, campaign, aid_number, now):
        raise ActionConflict(" ".join(reasons))
    try:
        with db.session.begin_nested():
            dossier = dossier_services.create_draft(campaign=campaign, aid_number=aid_number,
                                                    collectivite=collectivite, author=actor,
                                                    title=(title or "").strip()[:200], now=now)
            dossier.client_token = client_token
            db.session.flush()
    except IntegrityError:  # the same token, inserted at the same moment by another request
        existing = _by_token(client_token)
        if existing is None:
            raise
        return existing, False
    return dossier, True


def _by_token(client_token: str) -> Dossier | None:
    return db.session.scalar(select(Dossier).where(Dossier.client_token == client_token))


def ensure_editable(dossier: Dossier, actor: User) -> None:
    _require_applicant(actor, dossier.collectivite_id)
    if dossier.state not in EDITABLE_STATES:
        raise ActionConflict(f"Le dossier est au stade « {dossier.state_label} » : il ne peut plus être "
                             f"modifié.")


def rename(dossier: Dossier, actor: User, title: str, *, now: datetime) -> None:
    ensure_editable(dossier, actor)
    dossier.title = (title or "").strip()[:200]
    dossier.updated_at = now


# --- expense lines -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineOptions:
    """What an expense line of this dossier may say, read from the rule parameters."""

    categories: list[tuple[str, str]]
    packs: list[tuple[int, str]]
    licence_max_months: int | None


def line_options(dossier: Dossier, at: datetime) -> LineOptions:
    aid_rules = rules_at(dossier.campaign, dossier.aid_number, dossier.submitted_at or at)
    return LineOptions(
        categories=[(c, CATEGORY_LABELS[c]) for c in aid_rules.eligible_categories],
        packs=[(p.number, f"{p.label} (forfait de {format_euros(p.amount)})") for p in aid_rules.packs],
        licence_max_months=aid_rules.licence_max_months,
    )


def expense_line_values(dossier: Dossier, at: datetime, *, category: str, label: str, amount_ht: Decimal,
                        pack: int | None, months: int | None) -> dict:
    options = line_options(dossier, at)
    if category not in dict(options.categories):
        allowed = ", ".join(label.lower() for _, label in options.categories)
        raise InvalidAction(f"Cette catégorie de dépense n'est pas éligible à l'aide {dossier.aid_number} "
                            f"(catégories éligibles : {allowed}).")
    if options.packs:
        if pack not in dict(options.packs):
            raise InvalidAction("Choisissez le pack auquel la dépense se rattache.")
    else:
        pack = None
    if category == "licence":
        if not months or months < 1:
            raise InvalidAction("Indiquez la durée de la licence en mois.")
    else:
        months = None
    if not isinstance(amount_ht, Decimal) or not amount_ht.is_finite() or amount_ht <= 0 \
            or amount_ht != amount_ht.quantize(Decimal("0.01")):
        raise InvalidAction("Le montant doit être positif, en euros et centimes.")
    label = (label or "").strip()
    if not label:
        raise InvalidAction("Décrivez la dépense.")
    return {"category": category, "label": label[:300], "amount_ht": amount_ht, "pack": pack,
            "months": months}


def save_line(dossier: Dossier, actor: User, *, line: ExpenseLine | None = None, now: datetime,
              **values) -> ExpenseLine:
    """Add a line (``line`` None) or change one, while the dossier is editable."""
    ensure_editable(dossier, actor)
    values = expense_line_values(dossier, now, **values)
    if line is None:
        line = dossier_services.add_line(dossier, **values)
    else:
        for name, value in values.items():
            setattr(line, name, value)
    dossier.updated_at = now
    db.session.flush()
    return line


def remove_line(dossier: Dossier, line: ExpenseLine, actor: User, *, now: datetime) -> list[str]:
    """Remove a line. In a draft its documents go with it (the storage keys returned are to be
    deleted after the commit); once submitted they stay in the dossier, detached."""
    ensure_editable(dossier, actor)
    keys = []
    for document in list(line.documents):
        if _document_removable(dossier, document):
            keys.append(document.storage_key)
            document.line = None
            dossier.documents.remove(document)
        else:
            document.line = None
    dossier.lines.remove(line)
    dossier.updated_at = now
    db.session.flush()
    return keys


# --- documents -----------------------------------------------------------------------------------


def _last_request_at(dossier: Dossier) -> datetime | None:
    return db.session.scalar(select(AuditEvent.at).where(
        AuditEvent.dossier_id == dossier.id, AuditEvent.action == "request_documents")
        .order_by(AuditEvent.at.desc()).limit(1))


def _document_removable(dossier: Dossier, document: Document) -> bool:
    """A draft's documents, or those added since the instructor's request, may be removed; what
    the Region has already received stays."""
    if document.message_id is not None:
        return False  # sent with a message: the Region has it
    if dossier.state == "draft":
        return True
    requested_at = _last_request_at(dossier)
    return dossier.state == "incomplete" and requested_at is not None and document.uploaded_at >= requested_at


def document_removable(dossier: Dossier, document: Document) -> bool:
    return dossier.state in EDITABLE_STATES and _document_removable(dossier, document)


def remove_document(dossier: Dossier, document: Document, actor: User, *, now: datetime) -> str:
    ensure_editable(dossier, actor)
    if not _document_removable(dossier, document):
        raise ActionConflict("Cette pièce a déjà été transmise à la Région : elle ne peut plus être "
                             "retirée. Joignez la bonne pièce et expliquez-le dans votre réponse.")
    document.line = None
    dossier.documents.remove(document)
    dossier.updated_at = now
    db.session.flush()
    return document.storage_key


@dataclass
class UploadResult:
    stored: list[Document] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    @property
    def keys(self) -> list[str]:
        return [d.storage_key for d in self.stored]


def attach_files(dossier: Dossier, actor: User, files: list[tuple[str | None, bytes]], *,
                 line: ExpenseLine | None, max_bytes: int, now: datetime) -> UploadResult:
    """Check each (name, content) and store the accepted ones; the refused ones get a French
    message each and leave nothing behind (nor do the stored ones, if the transaction rolls back)."""
    ensure_editable(dossier, actor)
    if line is not None and line.dossier_id != dossier.id:
        raise InvalidAction("Cette dépense n'appartient pas au dossier.")
    result = UploadResult()
    for name, data in files:
        try:
            checked = documents.check_file(name, data, max_bytes)
        except documents.UploadRejected as error:
            result.rejected.append(str(error))
            continue
        try:
            result.stored.append(documents.store(dossier, checked, line=line, uploader=actor, now=now))
        except Exception:
            remove_files(result.keys)
            raise
    if result.stored:
        dossier.updated_at = now
    return result


class FilesRejected(InvalidAction):
    """An answer to a request for documents with a file refused: nothing is sent."""

    def __init__(self, rejected: list[str]):
        super().__init__(" ".join(rejected))
        self.rejected = rejected


def answer_request(dossier: Dossier, actor: User, files: list[tuple[str | None, bytes]], *,
                   line: ExpenseLine | None, message: str, max_bytes: int, now: datetime):
    """The applicant's answer to a request for documents: the files and the message, and the dossier
    goes back to its instructor; all or nothing (one file refused: FilesRejected, nothing sent)."""
    if files:
        result = attach_files(dossier, actor, files, line=line, max_bytes=max_bytes, now=now)
        if result.rejected:
            raise FilesRejected(result.rejected)
    return dossier_services.resubmit(dossier, actor, message, now=now)


# --- estimation and submission -------------------------------------------------------------------


def estimate(dossier: Dossier, at: datetime, extra: rules.ExpenseLine | None = None) -> rules.Decision:
    """What the rules would decide now, with an optional line being typed (the live estimation)."""
    return evaluate_dossier(dossier, at, (extra,) if extra is not None else ())


def decision_json(decision: rules.Decision) -> dict:
    """The estimation as JSON: amounts as strings (never floats) and formatted for display."""
    return {
        **decision_as_dict(decision),
        "amount_display": format_euros(decision.amount),
        "eligible_base_display": format_euros(decision.eligible_base),
        "problems": [f.message for f in decision.findings if not f.ok and not f.code.startswith("campaign.")],
    }


def submission_problems(dossier: Dossier, actor: User, now: datetime,
                        decision: rules.Decision | None = None) -> list[str]:
    """Everything that stops the draft from being submitted now, in French: the workflow's guards
    (deadline, lines, documents) and the rules' blocking findings (of ``decision``, the page's
    estimate, when it was already made)."""
    if dossier.state != "draft":
        return []
    ctx = dossier_services.context_for(actor, now)
    problems = [reason for guard in TRANSITIONS["submit"].guards if (reason := guard(dossier, ctx))]
    decision = decision or evaluate_dossier(dossier, now)
    for finding in decision.findings:
        if finding.ok or not finding.blocking or finding.code.startswith("campaign."):
            continue  # the deadline guard already said it
        if finding.code == "expense.base" and not dossier.lines:
            continue  # "Ajoutez au moins une ligne de dépense." already said it
        problems.append(finding.message)
    return problems


def visible_events(dossier: Dossier) -> list[AuditEvent]:
    """The timeline an applicant sees: the creation and the transitions of the workflow only
    (assignments, labels and notes are the staff's)."""
    return [event for event in dossier.events
            if event.action == "create" or (event.action in TRANSITIONS and event.action not in STAFF_ONLY_ACTIONS)]


STAFF_ONLY_ACTIONS = ("assign",)  # a transition of the table that changes nothing for the applicant


def delete_draft(dossier: Dossier, actor: User, *, now: datetime) -> list[str]:
    """Delete a draft: its lines and documents go (the storage keys returned are to be removed
    after the commit) and the dossier is hidden from everyone. Its row and history stay, as the
    audit trail is append-only. Refused once the dossier is submitted."""
    _require_applicant(actor, dossier.collectivite_id)
    if dossier.state != "draft" or dossier.discarded_at is not None:
        raise ActionConflict("Seul un brouillon peut être supprimé : un dossier déposé peut être retiré.")
    keys = [d.storage_key for d in dossier.documents]
    for document in list(dossier.documents):
        dossier.documents.remove(document)
    for line in list(dossier.lines):
        dossier.lines.remove(line)
    dossier.discarded_at = dossier.updated_at = now
    db.session.add(AuditEvent(dossier=dossier, actor=actor, action="discard", from_state="draft",
                              to_state="draft", at=now, reason="Brouillon supprimé par le demandeur"))
    db.session.flush()
    return keys
