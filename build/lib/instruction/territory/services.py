"""Territory operations: import of the shipped reference data, SIVOS creation, look-ups."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import or_, select

from instruction.errors import Refusal
from instruction.extensions import db
from instruction.territory.models import Collectivite, Commune, Departement, Epci, Sivos
from instruction.territory.names import fold

DATA_FILE = Path(__file__).with_name("data") / "bfc.json"


class TerritoryError(Refusal, ValueError):
    """A French message for the admin who asked (400)."""


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
    """Load or update départements, communes and EPCI from the shipped file, and commit (the
    command line's entry; the admin's refresh calls ``apply_territory`` in its own transaction)."""
    report = apply_territory(load_territory_file(path.read_bytes()))
    db.session.commit()
    return report


def load_territory_file(content: bytes) -> dict:
    """The data of a territory file (the shipped format, docs/territory-data.md); TerritoryError
    in French when it is not one."""
    try:
        data = json.loads(content.decode("utf-8-sig"))
        meta = data["metadata"]["population"]
        meta["communes"]["label"], meta["communes"]["year"], meta["epci"]["label"], meta["epci"]["year"]
        for key, fields in (("departements", ("code", "name")),
                            ("epci", ("code", "name", "type", "population")),
                            ("communes", ("code", "name", "siren", "departement", "population", "epci"))):
            rows = data[key]
            if not isinstance(rows, list) or not rows:
                raise TerritoryError(f"La liste « {key} » du fichier est vide.")
            for row in rows:
                missing = [f for f in fields if f not in row]
                if missing:
                    raise TerritoryError(f"Une entrée de « {key} » n'a pas les champs {', '.join(missing)} : "
                                         f"{json.dumps(row, ensure_ascii=False)[:200]}")
    except TerritoryError:
        raise
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise TerritoryError("Ce fichier n'est pas un fichier JSON lisible (UTF-8).") from None
    except (KeyError, TypeError):
        raise TerritoryError("Ce fichier n'a pas le format des données territoriales livrées "
                             "(métadonnées de population, départements, EPCI, communes).") from None
    return data


def apply_territory(data: dict) -> ImportReport:
    """Load or update départements, communes and EPCI from ``data`` (never commits).

    Idempotent: a rerun changes nothing. Never deletes. A ville centre chosen by an admin is kept;
    the file's default is only applied to an EPCI that has none. Submitted dossiers keep the
    population frozen on them at submission.
    """
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
    db.session.flush()
    return report


@dataclass(frozen=True)
class SivosSpec:
    """A SIVOS as an admin describes it, checked: its members and its EPCI resolved."""

    siren: str
    name: str
    members: tuple[Commune, ...]
    epci: Epci


def split_codes(text: str) -> list[str]:
    return [c for c in (text or "").replace(";", " ").replace(",", " ").split() if c]


def check_sivos(*, siren: str, name: str, member_insee: list[str], epci_siren: str | None = None,
                sivos: Sivos | None = None) -> SivosSpec:
    """TerritoryError (French) for the first problem; the EPCI defaults to the EPCI of most of its
    member communes. ``sivos`` is the one being edited (its own SIREN is not a duplicate)."""
    siren, name = (siren or "").strip(), (name or "").strip()
    if not (len(siren) == 9 and siren.isdigit()):
        raise TerritoryError(f"SIREN invalide : « {siren} » (9 chiffres attendus).")
    if not name:
        raise TerritoryError("Le nom du SIVOS est obligatoire.")
    if len(name) > 200:
        raise TerritoryError("Le nom du SIVOS tient en 200 caractères au plus.")
    other = db.session.scalar(select(Collectivite).where(Collectivite.siren == siren))
    if other is not None and (sivos is None or other.id != sivos.id):
        raise TerritoryError(f"Une collectivité existe déjà avec le SIREN {siren} ({other.name}).")
    if not member_insee:
        raise TerritoryError("Un SIVOS doit avoir au moins une commune membre.")
    members = list(db.session.scalars(select(Commune).where(Commune.insee.in_(member_insee))
                                      .order_by(Commune.insee)))
    missing = sorted(set(member_insee) - {c.insee for c in members})
    if missing:
        raise TerritoryError(f"Communes inconnues : {', '.join(missing)}.")
    if epci_siren:
        epci = db.session.scalar(select(Epci).where(Epci.siren == epci_siren.strip()))
        if epci is None:
            raise TerritoryError(f"EPCI inconnu : {epci_siren}.")
    else:
        counts: dict[int, int] = {}
        for c in members:
            if c.epci_id is not None:
                counts[c.epci_id] = counts.get(c.epci_id, 0) + 1
        if not counts:
            raise TerritoryError("Aucune commune membre n'appartient à un EPCI : indiquez l'EPCI.")
        found = db.session.get(Epci, max(sorted(counts), key=counts.__getitem__))
        assert found is not None
        epci = found
    return SivosSpec(siren=siren, name=name, members=tuple(members), epci=epci)


def _population_of(sivos: Sivos, members) -> None:
    sivos.population = sum(c.population or 0 for c in members)
    sivos.population_source = "Somme des populations municipales des communes membres"
    sivos.population_year = members[0].population_year
    sivos.departement_code = members[0].departement_code


def create_sivos(spec: SivosSpec) -> Sivos:
    sivos = Sivos(siren=spec.siren, name=spec.name, epci_id=spec.epci.id, members=list(spec.members))
    _population_of(sivos, spec.members)
    db.session.add(sivos)
    db.session.flush()
    return sivos


def update_sivos(sivos: Sivos, spec: SivosSpec) -> Sivos:
    sivos.siren, sivos.name, sivos.epci_id = spec.siren, spec.name, spec.epci.id
    sivos.members = list(spec.members)
    _population_of(sivos, spec.members)
    db.session.flush()
    return sivos


def add_sivos(*, siren: str, name: str, member_insee: list[str], epci_siren: str | None = None) -> Sivos:
    """Create a SIVOS (never commits); its EPCI defaults to the EPCI of most of its member communes."""
    return create_sivos(check_sivos(siren=siren, name=name, member_insee=member_insee, epci_siren=epci_siren))


class SivosImportError(TerritoryError):
    """A CSV of SIVOS with rejected lines: every one of them, in French; nothing was imported."""

    def __init__(self, problems: list[str]):
        super().__init__(" ".join(problems))
        self.problems = problems


SIVOS_COLUMNS = ("siren", "nom", "communes")


def import_sivos_csv(content: bytes | Path) -> list[Sivos]:
    """Create SIVOS from a CSV (columns: siren, nom, communes as INSEE codes separated by spaces,
    commas or ';', epci optional; ',' or ';' as separator). All or nothing: every line is checked
    first; if any is rejected, SivosImportError lists each rejected line and nothing is created."""
    raw = content.read_bytes() if isinstance(content, Path) else content
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SivosImportError(["Le fichier n'est pas un CSV en UTF-8."]) from None
    try:
        dialect = csv.Sniffer().sniff(text.splitlines()[0] if text else "", delimiters=",;")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in SIVOS_COLUMNS if c not in header]
    if missing:
        raise SivosImportError([f"Ligne 1 : colonnes manquantes : {', '.join(missing)} (attendues : "
                                "siren, nom, communes, et epci facultative)."])
    specs: list[SivosSpec] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
        if not any(row.values()):
            continue
        try:
            siren = row.get("siren", "")
            if siren in seen:
                raise TerritoryError(f"SIREN {siren} déjà présent ligne {seen[siren]}.")
            specs.append(check_sivos(siren=siren, name=row.get("nom", ""),
                                     member_insee=split_codes(row.get("communes", "")),
                                     epci_siren=row.get("epci") or None))
            seen[siren] = number
        except TerritoryError as error:
            problems.append(f"Ligne {number} : {error}")
    if problems:
        raise SivosImportError(problems)
    if not specs:
        raise SivosImportError(["Le fichier ne contient aucune ligne de SIVOS."])
    return [create_sivos(spec) for spec in specs]


def set_ville_centre(epci: Epci, commune: Commune) -> None:
    if commune.epci_id != epci.id:
        raise TerritoryError(f"{commune.name} n'est pas membre de {epci.name} : la ville centre est une "
                             "commune membre de l'EPCI.")
    epci.ville_centre_id = commune.id
    db.session.flush()


def member_communes(epci: Epci) -> list[Commune]:
    return list(db.session.scalars(select(Commune).where(Commune.epci_id == epci.id)
                                   .order_by(Commune.population.desc().nulls_last(), Commune.name)))


# --- a newer reference file: what it would change ----------------------------------------------


@dataclass(frozen=True)
class PopulationChange:
    kind: str  # commune | epci
    code: str
    name: str
    before: int | None
    after: int | None
    crossed: tuple[int, ...]  # thresholds crossed one way or the other
    drafts: int = 0  # dossiers not yet submitted, whose eligibility may change


@dataclass
class TerritoryPreview:
    new: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, code, name)
    renamed: list[tuple[str, str, str, str]] = field(default_factory=list)  # (kind, code, before, after)
    populations: list[PopulationChange] = field(default_factory=list)
    moved: list[tuple[str, str, str, str]] = field(default_factory=list)  # (insee, name, EPCI before, after)

    @property
    def crossings(self) -> list[PopulationChange]:
        return [p for p in self.populations if p.crossed]

    @property
    def changed(self) -> bool:
        return bool(self.new or self.renamed or self.populations or self.moved)


def crossed(before: int | None, after: int | None, thresholds) -> tuple[int, ...]:
    """The thresholds ``t`` ("fewer than t inhabitants") on which the two populations disagree."""
    if before is None or after is None:
        return ()
    return tuple(t for t in sorted(thresholds) if (before < t) != (after < t))


def preview_territory(data: dict, thresholds, drafts: dict[int, int] | None = None) -> TerritoryPreview:
    """What ``apply_territory(data)`` would change, without changing anything. ``thresholds`` are
    the population thresholds of the rules; ``drafts`` the dossiers not yet submitted per
    collectivité id (their eligibility follows the new population)."""
    preview = TerritoryPreview()
    drafts = drafts or {}
    epcis = {e.siren: e for e in db.session.scalars(select(Epci))}
    communes = {c.insee: c for c in db.session.scalars(select(Commune))}
    for kind, rows, existing, key in (("epci", data["epci"] + data.get("external_epci", []), epcis, "code"),
                                      ("commune", data["communes"], communes, "code")):
        for row in rows:
            current = existing.get(row[key])
            if current is None:
                preview.new.append((kind, row[key], row["name"]))
                continue
            if current.name != row["name"]:
                preview.renamed.append((kind, row[key], current.name, row["name"]))
            if current.population != row["population"]:
                preview.populations.append(PopulationChange(
                    kind, row[key], row["name"], current.population, row["population"],
                    crossed(current.population, row["population"], thresholds), drafts.get(current.id, 0)))
            if kind == "commune":
                before = current.epci.siren if current.epci else None
                if before != (row["epci"] or None):
                    after = epcis[row["epci"]].name if row["epci"] in epcis else (row["epci"] or "aucun")
                    preview.moved.append((row[key], row["name"], current.epci.name if current.epci else "aucun",
                                          after))
    preview.populations.sort(key=lambda p: (not p.crossed, p.kind, p.name))
    return preview


def search_collectivites(text: str, limit: int = 20, kind: str | None = None) -> list[Collectivite]:
    """By name (contains, ignoring case, accents and hyphens), INSEE code or SIREN; of one kind."""
    text = text.strip()
    if not text:
        return []
    query = select(Collectivite)
    if kind in ("commune", "epci", "sivos"):
        query = query.where(Collectivite.kind == kind)
    query = query.where(or_(
        Collectivite.search_name.contains(fold(text), autoescape=True),
        Collectivite.insee == text, Collectivite.siren == text,
    )).order_by(Collectivite.population.desc().nulls_last(), Collectivite.name).limit(limit)
    return list(db.session.scalars(query))
