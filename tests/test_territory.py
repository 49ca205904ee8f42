from __future__ import annotations

import pytest
from sqlalchemy import func, select

from instruction.territory.models import Commune, Departement, Epci
from instruction.territory.services import (
    TerritoryError,
    add_sivos,
    import_territory,
    search_collectivites,
)
from tests import factories


def test_import_loads_the_region(session):
    assert session.scalar(select(func.count()).select_from(Commune)) == 3685
    assert session.scalar(select(func.count()).select_from(Departement)) == 8
    in_region = session.scalar(
        select(func.count()).select_from(Epci).where(Epci.ville_centre_id.is_not(None))
    )
    assert in_region == 113
    agencourt = factories.commune("21001")
    assert agencourt.name == "Agencourt" and agencourt.population == 416
    assert agencourt.population_year == 2023 and "INSEE" in agencourt.population_source
    assert agencourt.epci.siren == "200070894"


def test_ville_centre_defaults_to_most_populous_member(session):
    dijon_metropole = factories.epci("242100410")
    assert dijon_metropole.ville_centre.name == "Dijon"
    assert dijon_metropole.population == 258630
    assert dijon_metropole.epci_id == dijon_metropole.id


def test_second_import_changes_nothing_and_keeps_admin_choices(session):
    plaine = factories.epci("200000925")
    genlis = factories.commune("21292")
    izier = factories.commune("21320")
    assert plaine.ville_centre_id == genlis.id
    plaine.ville_centre_id = izier.id  # an admin's choice
    session.commit()
    report = import_territory()
    assert not report.changed
    assert all(n == 0 for n in report.created.values())
    assert factories.epci("200000925").ville_centre_id == izier.id


def test_add_sivos_defaults_to_the_epci_of_most_members(session):
    sivos = add_sivos(siren="200012345", name="SIVOS des Trois Vallées",
                      member_insee=["21005", "21057", "21001"])
    assert sivos.epci.siren == "200000925"
    assert {c.insee for c in sivos.members} == {"21005", "21057", "21001"}
    assert sivos.population == 1500 + 339 + 416


@pytest.mark.parametrize("kwargs, message", [
    ({"siren": "12", "name": "X", "member_insee": ["21001"]}, "SIREN invalide"),
    ({"siren": "200012345", "name": "X", "member_insee": ["99999"]}, "Communes inconnues : 99999"),
    ({"siren": "200012345", "name": "X", "member_insee": []}, "au moins une commune"),
    ({"siren": "242100410", "name": "X", "member_insee": ["21001"]}, "existe déjà"),
])
def test_add_sivos_refuses_bad_input_in_french(session, kwargs, message):
    with pytest.raises(TerritoryError, match=message):
        add_sivos(**kwargs)


def test_search_by_name_insee_or_siren(session):
    assert search_collectivites("21231")[0].name == "Dijon"
    assert search_collectivites("242100410")[0].name == "Dijon Métropole"
    assert "Dijon" in [c.name for c in search_collectivites("dijon")]


@pytest.mark.parametrize("typed", ["bessey les citeaux", "BESSEY-LÈS", "lès-Cîteaux", "besséy"])
def test_search_ignores_case_accents_and_hyphens(session, typed):
    assert "Bessey-lès-Cîteaux" in [c.name for c in search_collectivites(typed)]


def test_search_treats_wildcards_as_text(session):
    assert search_collectivites("%") == [] and search_collectivites("_") == []


def test_a_renamed_collectivite_is_found_by_its_new_name(session):
    commune = factories.commune("21001")
    commune.name = "Agencourt-sur-Vouge"
    session.flush()
    assert search_collectivites("agencourt sur vouge")[0].insee == "21001"
