"""Territory operations: import of the shipped reference data, SIVOS creation, look-ups."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import or_, select

from instruction.extensions import db
from instruction.territory.models import Collectivite, Commune, Departement, Epci, Sivos
from instruction.territory.names import fold

DATA_FILE = Path(__file__).with_name("data") / "bfc.json"


class TerritoryError(ValueError):
    """A French message for the admin who asked."""


@dataclass
class ImportReport:
    created: dict[str, int] = field(default_factory=lambda: {"departement": 0, "commune": 0, "epci": 0})
    updated: dict[str, int] = field(default_factory=lambda: {"departement": 0, "commune": 0, "epci": 0})

    @property
    def changed(self) -> bool:
        return any(self.created.values()) or any(self.updated.values())

    def lines(self) -> list[str]:
        labels = {"departement": "départements", "commune": "communes", "epci": "EPCI"}
        return [f"{labels[k]} : {self.created[k]} créés, {self.updated[k]} mis à jour" for k in labels]


def _upsert(existing: dict, key: str, make, values: dict, report: ImportReport, kind: str):
    """The row ``existing[key]`` (created with ``make()`` if absent) with ``values`` set; counted
    in ``report`` as created, or as updated only if a value actually changed."""
    row = existing.get(key)
    if row is None:
        row = existing[key] = make()
        db.session.add(row)
        report.created[kind] += 1
    elif any(getattr(row, name) != value for name, value in values.items()):
        report.updated[kind] += 1
    for name, value in values.items():
        setattr(row, name, value)
    return row


def import_territory(path: Path = DATA_FILE) -> ImportReport:
    """Load or update départements, communes and EPCI from the shipped file.

    Idempotent: a rerun changes nothing. Never deletes. A ville centre chosen by an admin is kept;
    the file's default is only applied to an EPCI that has none.
    """
    data = json.loads(path.read_text(encoding="utf-8"))
    meta = data["metadata"]["population"]
    commune_source = (meta["communes"]["label"], meta["communes"]["year"])
    epci_source = (meta["epci"]["label"], meta["epci"]["year"])
    report = ImportReport()

    departements = {d.code: d for d in db.session.scalars(select(Departement))}
    for row in data["departements"]:
        _upsert(departements, row["code"], lambda code=row["code"]: Departement(code=code),
                {"name": row["name"]}, report, "departement")

    epcis = {e.siren: e for e in db.session.scalars(select(Epci))}
    epci_rows = data["epci"] + data.get("external_epci", [])
    for row in epci_rows:
        _upsert(epcis, row["code"], lambda siren=row["code"]: Epci(siren=siren), {
            "name": row["name"], "epci_type": row["type"], "population": row["population"],
            "population_source": epci_source[0], "population_year": epci_source[1],
        }, report, "epci")
    db.session.flush()
    for epci in epcis.values():
        if epci.epci_id is None:
            epci.epci_id = epci.id  # an EPCI's territory is its own

    communes = {c.insee: c for c in db.session.scalars(select(Commune))}
    for row in data["communes"]:
        epci = epcis.get(row["epci"]) if row["epci"] else None
        _upsert(communes, row["code"], lambda insee=row["code"]: Commune(insee=insee), {
            "name": row["name"], "siren": row["siren"], "departement_code": row["departement"],
            "population": row["population"], "population_source": commune_source[0],
            "population_year": commune_source[1], "epci_id": epci.id if epci else None,
        }, report, "commune")
    db.session.flush()

    for row in data["epci"]:
        epci = epcis[row["code"]]
        if epci.ville_centre_id is None and row.get("ville_centre"):
            epci.ville_centre_id = communes[row["ville_centre"]].id
            if epci.departement_code is None:
                epci.departement_code = communes[row["ville_centre"]].departement_code
    db.session.commit()
    return report


def add_sivos(*, siren: str, name: str, member_insee: list[str], epci_siren: str | None = None) -> Sivos:
    """Create a SIVOS; its EPCI defaults to the EPCI of most of its member communes."""
    siren = siren.strip()
    if not (len(siren) == 9 and siren.isdigit()):
        raise TerritoryError(f"SIREN invalide : « {siren} » (9 chiffres attendus).")
    if db.session.scalar(select(Collectivite).where(Collectivite.siren == siren)) is not None:
        raise TerritoryError(f"Une collectivité existe déjà avec le SIREN {siren}.")
    if not member_insee:
        raise TerritoryError("Un SIVOS doit avoir au moins une commune membre.")
    members = list(db.session.scalars(select(Commune).where(Commune.insee.in_(member_insee))))
    missing = sorted(set(member_insee) - {c.insee for c in members})
    if missing:
        raise TerritoryError(f"Communes inconnues : {', '.join(missing)}.")
    if epci_siren:
        epci = db.session.scalar(select(Epci).where(Epci.siren == epci_siren))
        if epci is None:
            raise TerritoryError(f"EPCI inconnu : {epci_siren}.")
    else:
        counts: dict[int, int] = {}
        for c in members:
            if c.epci_id is not None:
                counts[c.epci_id] = counts.get(c.epci_id, 0) + 1
        if not counts:
            raise TerritoryError("Aucune commune membre n'appartient à un EPCI : indiquez l'EPCI.")
        epci = db.session.get(Epci, max(sorted(counts), key=counts.__getitem__))
    sivos = Sivos(siren=siren, name=name.strip(), epci_id=epci.id, members=members,
                  departement_code=members[0].departement_code,
                  population=sum(c.population or 0 for c in members),
                  population_source="Somme des populations municipales des communes membres",
                  population_year=members[0].population_year)
    db.session.add(sivos)
    db.session.commit()
    return sivos


def import_sivos_csv(path: Path) -> list[Sivos]:
    """CSV columns: siren, nom, communes (INSEE codes separated by spaces or ';'), epci (optional)."""
    created = []
    with path.open(encoding="utf-8-sig", newline="") as f:
        for number, row in enumerate(csv.DictReader(f), start=2):
            try:
                codes = [c for c in row.get("communes", "").replace(";", " ").split() if c]
                created.append(add_sivos(siren=row.get("siren", ""), name=row.get("nom", ""),
                                         member_insee=codes, epci_siren=(row.get("epci") or None)))
            except TerritoryError as error:
                db.session.rollback()
                raise TerritoryError(f"Ligne {number} : {error}") from error
    return created


def search_collectivites(text: str, limit: int = 20) -> list[Collectivite]:
    """By name (contains, ignoring case, accents and hyphens), INSEE code or SIREN."""
    text = text.strip()
    if not text:
        return []
    query = select(Collectivite).where(or_(
        Collectivite.search_name.contains(fold(text), autoescape=True),
        Collectivite.insee == text, Collectivite.siren == text,
    )).order_by(Collectivite.population.desc().nulls_last(), Collectivite.name).limit(limit)
    return list(db.session.scalars(query))
