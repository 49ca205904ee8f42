"""Campaign rows mirror the rule parameter files, which are the source of truth."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select

from instruction.campaigns.models import Aid, Campaign
from instruction.extensions import db
from instruction.rules.parameters import CampaignParameters, available_campaigns, load_campaign


def parameters_of(campaign: Campaign) -> CampaignParameters:
    """The rule parameters a campaign applies, with the campaign's own dates (an admin may have
    moved them, or created the campaign from another one's parameter set)."""
    params = load_campaign(campaign.parameters_code)
    if (params.opens_at, params.deadline) == (campaign.opens_at, campaign.deadline_at):
        return params
    return replace(params, opens_at=campaign.opens_at, deadline=campaign.deadline_at)


def sync_campaigns() -> list[str]:
    """Create or update one row per parameter file; return what changed (empty on a rerun)."""
    changes: list[str] = []
    for code in available_campaigns():
        params = load_campaign(code)
        campaign = db.session.scalar(select(Campaign).where(Campaign.code == code))
        created = campaign is None
        if created:
            campaign = Campaign(code=code, parameters_code=code)
            db.session.add(campaign)
            changes.append(f"Campagne créée : {code} ({params.title})")
        wanted = {"title": params.title, "reference_prefix": params.reference_prefix,
                  "grants_need_vote": params.acts_at(params.opens_at).grants_need_vote}
        if not campaign.dates_set_by_admin:  # dates an admin moved are the admin's
            wanted |= {"opens_at": params.opens_at, "deadline_at": params.deadline}
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
