"""``instruction simulate``: the rule engine over a sequence of dossiers, beneficiaries resolved
from the loaded territory data. JSON in, JSON out (format: docs/rules.md)."""

from __future__ import annotations

import sys
from decimal import Decimal

import click
from flask.cli import with_appcontext
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from instruction import rules
from instruction.campaigns.models import Campaign
from instruction.dossiers.evaluation import applicant_for
from instruction.dossiers.models import Envelope, PackGrant
from instruction.extensions import db
from instruction.rules.simulator import simulation_json_chunks
from instruction.territory.models import Collectivite, Commune, Epci


class TerritoryResolver:
    """Resolves beneficiaries against the loaded territory, read in two queries on first use and
    kept as the rule module's ``Applicant`` values: a simulation of 10,000 dossiers asks the
    database twice, not once per dossier."""

    def __init__(self) -> None:
        self._applicants: dict[tuple[str, str], rules.Applicant] | None = None
        self._epcis: dict[str, Epci] = {}

    def _load(self) -> dict[tuple[str, str], rules.Applicant]:
        if self._applicants is None:
            everyone = db.session.scalars(select(Collectivite).options(
                joinedload(Collectivite.epci))).unique().all()
            self._epcis = {c.siren: c for c in everyone if isinstance(c, Epci) and c.siren}
            self._applicants = {}
            for c in everyone:
                code = c.insee if isinstance(c, Commune) else c.siren
                if code:
                    self._applicants[(c.kind, code)] = applicant_for(c)
        return self._applicants

    def __call__(self, beneficiary: dict) -> rules.Applicant:
        """{"commune": INSEE} | {"epci": SIREN} | {"sivos": SIREN} | {"sivos": {"name", "epci"}}."""
        applicants = self._load()
        (kind, value), = beneficiary.items()
        if kind == "sivos" and isinstance(value, dict):
            epci = self._epcis.get(value["epci"])
            if epci is None:
                raise rules.SimulationInputError(f"EPCI inconnu : « {value['epci']} » (SIREN attendu).")
            return rules.Applicant(kind="sivos", id=value["name"], name=value["name"],
                                   epci_siren=epci.siren, epci_name=epci.name,
                                   epci_population=epci.population)
        found = applicants.get((kind, value))
        if found is None:
            what = {"commune": "commune inconnue (code INSEE", "epci": "EPCI inconnu (SIREN",
                    "sivos": "SIVOS inconnu (SIREN"}[kind]
            raise rules.SimulationInputError(f"{what} « {value} »).")
        return found


def committed_consumption(campaign_code: str, aid: int, scope: str) -> rules.Consumption:
    """What the database's envelope for (campaign, aid, scope) has already committed, and for
    aid 1 the packs already granted to the commune of the scope."""
    consumed = db.session.scalar(
        select(Envelope.consumed).join(Campaign, Campaign.id == Envelope.campaign_id)
        .where(Campaign.code == campaign_code, Envelope.aid_number == aid, Envelope.scope == scope))
    packs: frozenset[int] = frozenset()
    if aid == 1 and scope.startswith("commune:"):
        packs = frozenset(db.session.scalars(
            select(PackGrant.pack).join(Campaign, Campaign.id == PackGrant.campaign_id)
            .join(Commune, Commune.id == PackGrant.collectivite_id)
            .where(Campaign.code == campaign_code, Commune.insee == scope.split(":", 1)[1])))
    return rules.Consumption(consumed=consumed if consumed is not None else Decimal("0.00"),
                             packs_granted=packs, scope=scope)


@click.command("simulate")
@click.argument("source", type=click.File("rb"))
@click.option("--with-commitments", is_flag=True,
              help="Partir de ce que les enveloppes ont déjà engagé en base (sinon : vides).")
@with_appcontext
def simulate_command(source, with_commitments: bool) -> None:
    """Simulate a sequence of dossiers: SOURCE is a JSON file, or - for standard input."""
    try:
        payload = rules.parse_simulation_json(source.read())
        result = rules.simulate(payload, TerritoryResolver(),
                                initial=committed_consumption if with_commitments else None)
    except rules.SimulationInputError as error:
        click.echo(f"Entrée invalide : {error}", err=True)
        sys.exit(2)
    for chunk in simulation_json_chunks(result):
        sys.stdout.write(chunk)
