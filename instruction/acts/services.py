"""Issuing legal acts (content frozen at the event) and rendering their PDF once.

``issue_*`` are called by the dossier services inside their transaction; they flush, never commit.
``ensure_rendered`` renders the PDF the first time it is needed (download, worker job) and stores
it with its sha256; a second call, or a concurrent one, keeps the first file.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from flask import current_app, render_template
from sqlalchemy import select, update

from instruction.acts.models import LegalAct
from instruction.campaigns.services import parameters_of
from instruction.db import rowcount
from instruction.extensions import db
from instruction.rules.acts import amount_in_words, answer_due_date, implicit_decision_date
from instruction.rules.formatting import format_date_fr, format_euros, format_percent
from instruction.rules.parameters import ActsRules, CampaignParameters, paris_date
from instruction.settings.services import current_identity
from instruction.storage import files

if TYPE_CHECKING:  # the dossier services call the acts, handing them the dossier
    from instruction.dossiers.models import Dossier

PDF_VARIANT = "pdf/a-3b"


def _parameters(dossier: Dossier) -> CampaignParameters:
    """The campaign's parameters: what the acts show and the rules they apply (titles, aids, the
    dated acts' values) do not depend on the dossier's own deadline, if an admin extended it."""
    return parameters_of(dossier.campaign)


def acts_rules(dossier: Dossier, at: datetime | date) -> ActsRules:
    return _parameters(dossier).acts_at(at)


def implicit_decision_on(dossier: Dossier, received_at: datetime, completed_at: datetime | None) -> date:
    months = acts_rules(dossier, completed_at or received_at).implicit_rejection_months
    return implicit_decision_date(received_at, completed_at, months)


def documents_due_on(dossier: Dossier, requested_at: datetime) -> date:
    return answer_due_date(requested_at, acts_rules(dossier, requested_at).documents_answer_days)


def _common(dossier: Dossier, now: datetime) -> dict:
    """What every act shows: who issues it, to whom, about what, and how to contest it."""
    params = _parameters(dossier)
    rules = params.acts_at(now)
    collectivite = dossier.collectivite
    return {
        "reference": dossier.reference,
        "title": dossier.title,
        "issued_on": format_date_fr(paris_date(now)),
        "identity": current_identity().as_dict(),
        "beneficiary": {"name": collectivite.name, "kind": collectivite.kind,
                        "siren": getattr(collectivite, "siren", None)},
        "campaign": params.title,
        "campaign_reference": params.reference,
        "aid_number": dossier.aid_number,
        "aid_title": params.aid(dossier.aid_number).title,
        "recourse_months": rules.recourse_months,
        "recourse_reference": rules.references["recourse_months"],
    }


def _add(dossier: Dossier, kind: str, now: datetime, content: dict) -> LegalAct:
    act = LegalAct(dossier=dossier, kind=kind, issued_at=now, content=content)
    db.session.add(act)
    db.session.flush()
    return act


def issue_acknowledgment(dossier: Dossier, *, received_at: datetime, completed_at: datetime | None,
                         now: datetime) -> LegalAct:
    """CRPA L112-3, R112-5: date received, date of the implicit rejection, the service, the
    voies et délais de recours against that rejection; issued again on completion (L114-5)."""
    rules = acts_rules(dossier, completed_at or received_at)
    content = _common(dossier, now) | {
        "received_on": format_date_fr(paris_date(received_at)),
        "completed_on": format_date_fr(paris_date(completed_at)) if completed_at else None,
        "implicit_decision_on": format_date_fr(implicit_decision_on(dossier, received_at, completed_at)),
        "implicit_rejection_months": rules.implicit_rejection_months,
        "implicit_rejection_reference": rules.references["implicit_rejection_months"],
        "requested_amount": format_euros(dossier.requested_amount) if dossier.requested_amount is not None else None,
    }
    return _add(dossier, "acknowledgment", now, content)


def _basis(dossier: Dossier, at: datetime) -> tuple[str, str]:
    """How the amount is computed (rate or packs) and the legal reference of that rule."""
    aid = _parameters(dossier).aid(dossier.aid_number)
    name = "rate" if "rate" in aid.dated else "packs"
    entry = aid.dated[name].entry_at(dossier.submitted_at or at)
    if name == "rate":
        return f"taux de {format_percent(entry.value)} des dépenses éligibles HT", entry.reference
    granted = set((dossier.evaluation or {}).get("packs_granted", []))
    packs = [f"{p.label} ({format_euros(p.amount)})" for p in entry.value if p.number in granted]
    return "forfaits : " + (", ".join(packs) or "aucun"), entry.reference


def issue_grant_letter(dossier: Dossier, *, amount: Decimal, now: datetime,
                       deliberation: dict | None = None) -> LegalAct:
    rules = acts_rules(dossier, now)
    basis, basis_reference = _basis(dossier, now)
    evaluation = dossier.evaluation or {}
    base = evaluation.get("eligible_base")
    content = _common(dossier, now) | {
        "amount": format_euros(amount),
        "amount_in_words": amount_in_words(amount),
        "computed_amount": format_euros(dossier.computed_amount) if dossier.computed_amount is not None else None,
        "eligible_base": format_euros(Decimal(base)) if base is not None else None,
        "basis": basis,
        "basis_reference": basis_reference,
        "payment_request_months": rules.payment_request_months,
        "payment_reference": rules.references["payment_request_months"],
        "deliberation": deliberation,
    }
    return _add(dossier, "grant", now, content)


def issue_decision_letter(dossier: Dossier, kind: str, *, reason: str, now: datetime) -> LegalAct:
    """Ineligibility, refusal or cancellation of a grant, with its reason."""
    if kind not in ("ineligibility", "refusal", "cancellation"):
        raise ValueError(kind)
    content = _common(dossier, now) | {"reason": reason.strip()}
    if kind == "cancellation" and dossier.granted_amount is not None:
        content["cancelled_amount"] = format_euros(dossier.granted_amount)
        content["granted_on"] = format_date_fr(paris_date(dossier.decided_at)) if dossier.decided_at else None
    return _add(dossier, kind, now, content)


def summary(act: LegalAct) -> dict:
    """What an outbox row carries about an act (its e-mail links to the download)."""
    return {"id": act.id, "kind": act.kind, "title": act.title,
            "path": f"/actes/{act.id}/pdf"}


def acts_of(dossier_id: int) -> list[LegalAct]:
    return list(db.session.scalars(select(LegalAct).where(LegalAct.dossier_id == dossier_id)
                                   .order_by(LegalAct.id)))


# --- rendering ---------------------------------------------------------------------------------


def render_pdf(act: LegalAct) -> bytes:
    """The PDF of the act's frozen content (WeasyPrint, PDF/A-3b)."""
    from weasyprint import HTML

    html = render_template(f"acts/{act.kind}.html", act=act, c=act.content, title=act.title)
    return HTML(string=html, base_url=current_app.root_path).write_pdf(pdf_variant=PDF_VARIANT)


def ensure_rendered(act: LegalAct, *, now: datetime) -> LegalAct:
    """Render and store the PDF if it is not yet; never again once it is (flushes)."""
    if act.storage_key is not None:
        return act
    data = render_pdf(act)
    key = files.write_bytes(data)
    files.remove_on_rollback(key)  # its row never existed
    result = db.session.execute(
        update(LegalAct).where(LegalAct.id == act.id, LegalAct.storage_key.is_(None))
        .values(storage_key=key, sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data),
                rendered_at=now)
        .execution_options(synchronize_session=False))
    if rowcount(result) != 1:  # rendered meanwhile by someone else: keep theirs
        files.remove_files([key])
    db.session.refresh(act)
    return act


def pdf_of(act: LegalAct) -> bytes:
    """The stored bytes (checked against the sha256 recorded when they were written)."""
    data = files.path_for(act.storage_key or "").read_bytes()
    if hashlib.sha256(data).hexdigest() != act.sha256:
        raise RuntimeError(f"legal act {act.id}: stored file does not match its sha256")
    return data


def render_acts(now: datetime) -> str:
    """The periodic job ``acts``: render the PDF of the acts issued since the last run (each once)."""
    return f"{render_pending(now=now)} acte(s) mis en forme"


def render_pending(*, now: datetime, limit: int = 100) -> int:
    """Render the acts not rendered yet (worker job); returns how many."""
    pending = list(db.session.scalars(select(LegalAct).where(LegalAct.storage_key.is_(None))
                                      .order_by(LegalAct.id).limit(limit)))
    for act in pending:
        ensure_rendered(act, now=now)
    return len(pending)
