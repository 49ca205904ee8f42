"""The rules of the five aids: pure functions over frozen dataclasses and dated parameters.

No Flask, no SQLAlchemy, no clock (instants are arguments), no I/O except reading the packaged
parameter files. See docs/rules.md.
"""

from instruction.rules.engine import cap_scope, evaluate
from instruction.rules.model import (
    CATEGORIES,
    KINDS,
    Applicant,
    CapState,
    Consumption,
    Decision,
    ExpenseLine,
    Finding,
)
from instruction.rules.parameters import (
    CampaignParameters,
    ParameterError,
    UnknownCampaignError,
    available_campaigns,
    load_campaign,
)
from instruction.rules.simulator import SimulationInputError, parse_simulation_json, simulate

__all__ = [
    "CATEGORIES",
    "KINDS",
    "Applicant",
    "CampaignParameters",
    "CapState",
    "Consumption",
    "Decision",
    "ExpenseLine",
    "Finding",
    "ParameterError",
    "SimulationInputError",
    "UnknownCampaignError",
    "available_campaigns",
    "cap_scope",
    "evaluate",
    "load_campaign",
    "parse_simulation_json",
    "simulate",
]
