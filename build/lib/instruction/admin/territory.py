"""Administration of the territory: SIVOS (create, edit, CSV import), the ville centre of an EPCI,
the agents of a collectivité, and the refresh of the reference data (preview, then apply).

Each operation changes the territory through ``territory.services`` and writes its audit event in
the caller's transaction; views commit through ``perform``."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select

from instruction.accounts.models import User
from instruction.admin import audit
from instruction.admin.people import _require_admin
from instruction.dossiers.models import Dossier
from instruction.extensions import db
from instruction.rules.parameters import available_campaigns, load_campaign
from instruction.territory import services as territory
from instruction.territory.models import Collectivite, Commune, Epci, Sivos


def _sivos_state(sivos: Sivos) -> dict:
    return {"name": sivos.name, "siren": sivos.siren, "epci": sivos.epci.name if sivos.epci else None,
            "communes": sorted(c.insee for c in sivos.members)}


def _label(collectivite: Collectivite) -> str:
    return f"{collectivite.kind_label} {collectivite.name} ({collectivite.code})"


def create_sivos(actor: User, *, siren: str, name: str, communes: str, epci_siren: str | None,
                 now: datetime) -> Sivos:
    _require_admin(actor)
    sivos = territory.create_sivos(territory.check_sivos(
        siren=siren, name=name, member_insee=territory.split_codes(communes), epci_siren=epci_siren))
    db.session.refresh(sivos)
    audit.record(actor, "create_sivos", subject_kind="collectivite", subject_id=sivos.id,
                 label=_label(sivos), now=now, after=_sivos_state(sivos))
    return sivos


def update_sivos(actor: User, sivos: Sivos, *, siren: str, name: str, communes: str,
                 epci_siren: str | None, now: datetime) -> Sivos:
    _require_admin(actor)
    before = _sivos_state(sivos)
    territory.update_sivos(sivos, territory.check_sivos(
        siren=siren, name=name, member_insee=territory.split_codes(communes), epci_siren=epci_siren,
        sivos=sivos))
    db.session.refresh(sivos)
    audit.record(actor, "update_sivos", subject_kind="collectivite", subject_id=sivos.id,
                 label=_label(sivos), now=now, before=before, after=_sivos_state(sivos))
    return sivos


def import_sivos(actor: User, content: bytes, *, filename: str, now: datetime) -> list[Sivos]:
    """All lines or none (``territory.SivosImportError`` lists each rejected line)."""
    _require_admin(actor)
    created = territory.import_sivos_csv(content)
    audit.record(actor, "import_sivos", subject_kind="territory", subject_id=None,
                 label=f"Import CSV « {filename} »", now=now,
                 after={"count": len(created), "siren": [s.siren for s in created]})
    return created


def change_ville_centre(actor: User, epci: Epci, commune_id: int, *, now: datetime) -> None:
    _require_admin(actor)
    commune = db.session.get(Commune, commune_id)
    if commune is None:
        raise territory.TerritoryError("Cette commune n'existe pas.")
    before = epci.ville_centre.name if epci.ville_centre else None
    territory.set_ville_centre(epci, commune)
    audit.record(actor, "change_ville_centre", subject_kind="collectivite", subject_id=epci.id,
                 label=_label(epci), now=now, before={"ville_centre": before},
                 after={"ville_centre": commune.name})


# --- reference data ------------------------------------------------------------------------------


def population_thresholds() -> tuple[int, ...]:
    """Every population threshold ("fewer than N inhabitants") of every campaign's rules, at any date."""
    found: set[int] = set()
    for code in available_campaigns():
        for aid in load_campaign(code).aids.values():
            parameter = aid.dated.get("population_below")
            if parameter is not None:
                found |= {entry.value for entry in parameter.values}
    return tuple(sorted(found))


def upload_folder(instance_path: str) -> Path:
    return Path(instance_path) / "territory-uploads"


def store_upload(folder: Path, content: bytes) -> str:
    """Keep an uploaded reference file until it is confirmed; its name is its SHA-256."""
    territory.load_territory_file(content)  # refuse what is not a territory file
    digest = hashlib.sha256(content).hexdigest()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{digest}.json").write_bytes(content)
    return digest


def stored_upload(folder: Path, digest: str) -> bytes:
    if not (len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
        raise territory.TerritoryError("Ce fichier n'est plus disponible : envoyez-le à nouveau.")
    path = folder / f"{digest}.json"
    if not path.exists():
        raise territory.TerritoryError("Ce fichier n'est plus disponible : envoyez-le à nouveau.")
    return path.read_bytes()


def preview(content: bytes) -> territory.TerritoryPreview:
    drafts = dict(db.session.execute(select(Dossier.collectivite_id, func.count(Dossier.id))
                                     .where(Dossier.state == "draft").group_by(Dossier.collectivite_id)).all())
    return territory.preview_territory(territory.load_territory_file(content), population_thresholds(),
                                       {int(k): int(v) for k, v in drafts.items()})


def refresh_territory(actor: User, content: bytes, *, now: datetime) -> territory.ImportReport:
    """Apply a reference file the admin previewed. Submitted dossiers keep their frozen population."""
    _require_admin(actor)
    changes = preview(content)
    report = territory.apply_territory(territory.load_territory_file(content))
    audit.record(actor, "refresh_territory", subject_kind="territory", subject_id=None,
                 label="Communes et EPCI (fichier de référence envoyé)", now=now,
                 after={"created": sum(report.created.values()), "updated": sum(report.updated.values())},
                 reason="; ".join(f"{p.name} : {p.before} → {p.after} habitants" for p in changes.crossings)[:1000]
                 or None)
    return report
