"""Campaign rows mirror the rule parameter files, which are the source of truth."""

from __future__ import annotations

from sqlalchemy import select

from instruction.campaigns.models import Aid, Campaign
from instruction.extensions import db
from instruction.rules.parameters import available_campaigns, load_campaign


def sync_campaigns() -> list[str]:
    """Create or update one row per parameter file; return what changed (empty on a rerun)."""
    changes: list[str] = []
    for code in available_campaigns():
        params = load_campaign(code)
        campaign = db.session.scalar(select(Campaign).where(Campaign.code == code))
        created = campaign is None
        if created:
            campaign = Campaign(code=code)
            db.session.add(campaign)
            changes.append(f"Campagne créée : {code} ({params.title})")
        wanted = {
            "title": params.title,
            "reference_prefix": params.reference_prefix,
            "opens_at": params.opens_at,
            "deadline_at": params.deadline,
        }
        for field, value in wanted.items():
            if getattr(campaign, field) != value:
                setattr(campaign, field, value)
                if not created:
                    changes.append(f"Campagne {code} : {field} mis à jour")
        existing = {aid.number: aid for aid in campaign.aids}
        for number, aid_params in sorted(params.aids.items()):
            aid = existing.get(number)
            if aid is None:
                campaign.aids.append(Aid(number=number, title=aid_params.title))
                if not created:
                    changes.append(f"Campagne {code} : aide {number} ajoutée")
            elif aid.title != aid_params.title:
                aid.title = aid_params.title
                changes.append(f"Campagne {code} : aide {number} renommée")
    db.session.commit()
    return changes


def current_campaign() -> Campaign | None:
    """The campaign whose deadline is the latest (the demo campaign in a demo install)."""
    return db.session.scalar(select(Campaign).order_by(Campaign.deadline_at.desc()).limit(1))
