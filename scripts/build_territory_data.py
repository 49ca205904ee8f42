#!/usr/bin/env python3
"""Build ``instruction/territory/data/bfc.json`` from ``@etalab/decoupage-administratif``.

The npm package ships the INSEE Code officiel géographique with the INSEE populations légales
(``data/communes.json``) and the DGCL list of EPCI à fiscalité propre with their member
communes (``data/epci.json``). This script keeps the région Bourgogne-Franche-Comté (code 27):
its départements, its current communes and the EPCI whose members are mostly in the region.

Usage::

    python scripts/build_territory_data.py                      # npm pack the pinned version
    python scripts/build_territory_data.py --tarball pkg.tgz    # use a tarball already fetched
    python scripts/build_territory_data.py --package-version 6.1.0 --population-year 2024 \
        --epci-population-year 2023

Standard library only. The output is deterministic: rows and keys are sorted and nothing in it
depends on the time or the machine, so a rerun on the same package gives the identical file.
See docs/territory-data.md for the format and the decisions.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

PACKAGE_NAME = "@etalab/decoupage-administratif"
# Pinned so that a rebuild gives the same file; change it (or pass --package-version) on purpose.
DEFAULT_PACKAGE_VERSION = "6.0.0"

REGION_CODE = "27"
# Current communes in the package are typed "commune-actuelle" (the INSEE COG calls them COM);
# "commune-deleguee", "commune-associee" and "arrondissement-municipal" are left out.
CURRENT_COMMUNE_TYPE = "commune-actuelle"

# Vintage of the populations, checked by hand for each package version, since the package does
# not state it in its data. For 6.0.0: the README cites the INSEE "Populations légales 2023"
# (insee.fr/fr/statistiques/8680726, in force on 1 January 2026) for communes.json; the
# populations in epci.json (DGCL file) are, commune by commune, those of the INSEE populations
# légales 2022 (they equal the commune populations of package 4.1.0, whose README cites the
# populations légales 2022). For another version, pass --population-year/--epci-population-year
# after checking, or the file says the year is unknown.
KNOWN_POPULATION_YEARS: dict[str, dict[str, int]] = {
    "6.0.0": {"communes": 2023, "epci": 2022},
}

COMMUNE_POPULATION_LABEL = "INSEE, populations légales, population municipale"
EPCI_POPULATION_LABEL = (
    "DGCL, liste et composition des EPCI à fiscalité propre, population municipale"
)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO_ROOT / "instruction" / "territory" / "data" / "bfc.json"

DATA_FILES = ("communes.json", "epci.json", "departements.json", "regions.json")


class BuildError(Exception):
    pass


# --------------------------------------------------------------------------- fetching


def npm_pack(version: str, dest: Path) -> Path:
    """Run ``npm pack NAME@VERSION`` in ``dest`` and return the tarball path."""
    npm = shutil.which("npm")
    if npm is None:
        raise BuildError("npm is not on PATH; install Node.js/npm or pass --tarball PATH")
    spec = f"{PACKAGE_NAME}@{version}"
    result = subprocess.run(
        [npm, "pack", spec, "--silent"], cwd=dest, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise BuildError(f"npm pack {spec} failed:\n{result.stderr.strip()}")
    tarballs = sorted(dest.glob("*.tgz"))
    if len(tarballs) != 1:
        raise BuildError(f"npm pack {spec} produced {len(tarballs)} tarballs in {dest}")
    return tarballs[0]


def read_tarball(path: Path) -> dict[str, Any]:
    """Read package.json and the data files from an npm tarball, without extracting to disk."""
    wanted = {"package/package.json": "package.json"}
    wanted.update({f"package/data/{name}": name for name in DATA_FILES})
    found: dict[str, Any] = {}
    with tarfile.open(path, "r:gz") as tar:
        for member in tar.getmembers():
            key = wanted.get(member.name)
            if key is None or not member.isfile():
                continue
            handle = tar.extractfile(member)
            if handle is None:
                continue
            with handle:
                found[key] = json.loads(handle.read().decode("utf-8"))
    missing = sorted(set(wanted.values()) - set(found))
    if missing:
        raise BuildError(f"{path} lacks {', '.join(missing)}")
    return found


# --------------------------------------------------------------------------- building


def ville_centre(codes: list[str], population: dict[str, int | None]) -> str | None:
    """Most populous commune among ``codes``; ties (and unknown populations) by lowest code."""
    if not codes:
        return None
    return min(codes, key=lambda code: (-(population.get(code) or 0), code))


def build(
    files: dict[str, Any],
    population_year: int | None,
    epci_population_year: int | None,
) -> tuple[dict[str, Any], dict[str, int]]:
    package = files["package.json"]
    if package.get("name") != PACKAGE_NAME:
        raise BuildError(f"tarball is {package.get('name')!r}, not {PACKAGE_NAME}")
    version = package["version"]

    regions = [r for r in files["regions.json"] if r["code"] == REGION_CODE]
    if len(regions) != 1:
        raise BuildError(f"région {REGION_CODE} not found once in regions.json")
    region = regions[0]

    departements = sorted(
        (
            {"code": d["code"], "name": d["nom"]}
            for d in files["departements.json"]
            if d.get("region") == REGION_CODE
        ),
        key=lambda d: d["code"],
    )
    departement_codes = {d["code"] for d in departements}

    all_current = {
        c["code"]: c for c in files["communes.json"] if c.get("type") == CURRENT_COMMUNE_TYPE
    }
    communes_src = [c for c in all_current.values() if c.get("region") == REGION_CODE]
    if not communes_src:
        raise BuildError(f"no {CURRENT_COMMUNE_TYPE!r} commune with region {REGION_CODE}")
    stray = sorted({c["departement"] for c in communes_src} - departement_codes)
    if stray:
        raise BuildError(f"communes of the region in unknown départements {stray}")
    region_codes = {c["code"] for c in communes_src}
    population = {code: c.get("population") for code, c in all_current.items()}

    # Membership: each commune belongs to at most one EPCI à fiscalité propre.
    epci_of: dict[str, str] = {}
    for epci in files["epci.json"]:
        for member in epci["membres"]:
            previous = epci_of.setdefault(member["code"], epci["code"])
            if previous != epci["code"]:
                raise BuildError(
                    f"commune {member['code']} is in EPCI {previous} and {epci['code']}"
                )

    kept: list[dict[str, Any]] = []
    external: list[dict[str, Any]] = []
    for epci in files["epci.json"]:
        members = sorted(m["code"] for m in epci["membres"])
        inside = [code for code in members if code in region_codes]
        if not inside:
            continue
        outside = [m for m in epci["membres"] if m["code"] not in region_codes]
        row: dict[str, Any] = {
            "code": epci["code"],
            "name": epci["nom"],
            "type": epci["type"],
            "population": epci.get("populationMunicipale"),
            "population_sum_communes": sum(population.get(code) or 0 for code in members),
            "members": inside,
        }
        # Majority rule: strictly more than half of the member communes, by count.
        if 2 * len(inside) > len(members):
            row["outside_members"] = sorted(
                (
                    {
                        "code": m["code"],
                        "name": all_current.get(m["code"], {}).get("nom", m.get("nom")),
                        "departement": all_current.get(m["code"], {}).get("departement"),
                        "population": population.get(m["code"]),
                    }
                    for m in outside
                ),
                key=lambda m: m["code"],
            )
            row["ville_centre"] = ville_centre(inside, population)
            kept.append(row)
        else:
            row["members_total"] = len(members)
            external.append(row)
    kept.sort(key=lambda e: e["code"])
    external.sort(key=lambda e: e["code"])

    communes = sorted(
        (
            {
                "code": c["code"],
                "name": c["nom"],
                "departement": c["departement"],
                "population": c.get("population"),
                "siren": c.get("siren"),
                "epci": epci_of.get(c["code"]),
            }
            for c in communes_src
        ),
        key=lambda c: c["code"],
    )

    kept_codes = {e["code"] for e in kept}
    counts = {
        "departements": len(departements),
        "communes": len(communes),
        "epci": len(kept),
        "external_epci": len(external),
        "communes_without_epci": sum(1 for c in communes if c["epci"] is None),
        "communes_in_external_epci": sum(
            1 for c in communes if c["epci"] is not None and c["epci"] not in kept_codes
        ),
        "communes_without_population": sum(1 for c in communes if c["population"] is None),
        "communes_without_siren": sum(1 for c in communes if not c["siren"]),
        "outside_members": sum(len(e["outside_members"]) for e in kept),
    }

    def population_source(label: str, year: int | None) -> dict[str, Any]:
        source: dict[str, Any] = {"label": label, "year": year}
        if year is None:
            source["note"] = (
                f"year not established for package version {version}: the package does not "
                "state it in its data; check its README before relying on it"
            )
        return source

    metadata = {
        "source": {
            "package": PACKAGE_NAME,
            "version": version,
            "files": [
                "data/communes.json",
                "data/departements.json",
                "data/epci.json",
                "data/regions.json",
            ],
            "producers": [
                "INSEE (Code officiel géographique, populations légales)",
                "DGCL (liste et composition des EPCI à fiscalité propre)",
            ],
        },
        "licence": "Licence Ouverte / Open Licence 2.0 (Etalab)",
        "licence_url": "https://www.etalab.gouv.fr/licence-ouverte-open-licence",
        "attribution": (
            f"INSEE et DGCL, via le paquet npm {PACKAGE_NAME} {version} (Etalab / data.gouv.fr)"
        ),
        "generated_by": "scripts/build_territory_data.py",
        "note": (
            "Generated file, do not edit by hand: rebuild with "
            "`python scripts/build_territory_data.py`. Format in docs/territory-data.md."
        ),
        "region": {"code": REGION_CODE, "name": region["nom"]},
        "population": {
            "communes": population_source(COMMUNE_POPULATION_LABEL, population_year),
            "epci": population_source(EPCI_POPULATION_LABEL, epci_population_year),
            "epci_population_sum_communes": population_source(
                COMMUNE_POPULATION_LABEL + ", somme des communes membres", population_year
            ),
        },
        "rules": {
            "communes": f"type {CURRENT_COMMUNE_TYPE!r} (COM) and region {REGION_CODE}",
            "epci": (
                "kept when strictly more than half of its member communes (by count) "
                "are in the region"
            ),
            "ville_centre": (
                "member commune in the region with the largest population; "
                "ties broken by the lowest INSEE code"
            ),
        },
        "counts": counts,
    }
    data = {
        "metadata": metadata,
        "departements": departements,
        "communes": communes,
        "epci": kept,
        "external_epci": external,
    }
    return data, counts


# --------------------------------------------------------------------------- writing


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def dumps(data: dict[str, Any]) -> str:
    """Compact JSON with one row per line for the lists, so diffs stay readable."""
    parts = []
    for key in sorted(data):
        value = data[key]
        if isinstance(value, list):
            body = ",\n".join(_compact(item) for item in value)
            rendered = f"[\n{body}\n]" if value else "[]"
        else:
            rendered = _compact(value)
        parts.append(f"{_compact(key)}:{rendered}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tarball", type=Path, help="npm tarball of the package (skips npm pack)")
    parser.add_argument(
        "--package-version",
        default=DEFAULT_PACKAGE_VERSION,
        help=f"version to npm pack (default {DEFAULT_PACKAGE_VERSION})",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument(
        "--population-year", type=int, help="year of the INSEE populations in communes.json"
    )
    parser.add_argument(
        "--epci-population-year", type=int, help="year of the populations in epci.json"
    )
    args = parser.parse_args(argv)

    try:
        if args.tarball:
            files = read_tarball(args.tarball)
        else:
            with tempfile.TemporaryDirectory(prefix="decoupage-") as tmp:
                files = read_tarball(npm_pack(args.package_version, Path(tmp)))
        version = files["package.json"].get("version")
        known = KNOWN_POPULATION_YEARS.get(version, {})
        population_year = args.population_year or known.get("communes")
        epci_population_year = args.epci_population_year or known.get("epci")
        data, counts = build(files, population_year, epci_population_year)
    except (BuildError, OSError, tarfile.TarError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    text = dumps(data)
    assert json.loads(text) == data  # the hand layout must stay valid JSON
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")

    print(f"{PACKAGE_NAME} {version} -> {args.output} ({len(text.encode('utf-8')):,} bytes)")
    print(
        f"populations: communes {population_year or 'unknown'}, "
        f"EPCI {epci_population_year or 'unknown'}"
    )
    for key, value in counts.items():
        print(f"{key}: {value}")
    if population_year is None or epci_population_year is None:
        print("warning: population year unknown for this package version", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
