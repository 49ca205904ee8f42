"""Administration of the territory: search, SIVOS (form and all-or-nothing CSV import with a French
report of each rejected line), ville centre, agents of a collectivité, and the refresh of the
reference data (a preview that changes nothing, then the confirmed update)."""

from __future__ import annotations

import html
import io
import json
import re

import pytest
from sqlalchemy import func, select

from instruction.accounts import services as accounts
from instruction.dossiers.models import AuditEvent
from instruction.notifications.models import OutboxMessage
from instruction.territory.models import Commune, Sivos
from instruction.territory.services import DATA_FILE
from tests import factories

pytestmark = pytest.mark.usefixtures("fresh_limiter")


def text(response) -> str:
    return re.sub(r"\s+", " ", html.unescape(response.get_data(as_text=True)))


def events(action: str) -> list[AuditEvent]:
    return list(factories.db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                                             .order_by(AuditEvent.id)))


def sivos_count() -> int:
    return factories.db.session.scalar(select(func.count()).select_from(Sivos))


@pytest.fixture
def admin(client, session):
    return factories.staff_logged_in(client, session, "admin")


def upload(client, path, content: bytes, name: str, **data):
    return client.post(path, data={**data, "file": (io.BytesIO(content), name)},
                       content_type="multipart/form-data")


def test_territory_pages_are_refused_to_other_roles(client, session):
    factories.staff_logged_in(client, session, "instructor")
    dijon = factories.epci("242100410")
    for path in ("/administration/territoire", f"/administration/territoire/{dijon.id}",
                 "/administration/territoire/sivos/nouveau"):
        assert client.get(path).status_code == 403, path
    for path in ("/administration/territoire/sivos/nouveau", "/administration/territoire/sivos/import",
                 f"/administration/territoire/epci/{dijon.id}/ville-centre",
                 f"/administration/territoire/{dijon.id}/agents", "/administration/territoire/referentiel",
                 "/administration/territoire/referentiel/appliquer"):
        assert client.post(path).status_code == 403, path


def test_search_communes_epci_and_sivos_by_kind(client, admin):
    page = text(client.get("/administration/territoire?q=dijon"))
    assert "Dijon Métropole" in page and ">Dijon<" in page
    epci_only = text(client.get("/administration/territoire?q=dijon&kind=epci"))
    assert "Dijon Métropole" in epci_only and ">Dijon<" not in epci_only
    client.post("/administration/territoire/sivos/nouveau", data={
        "name": "SIVOS des Écoles de la Plaine", "siren": "200012345", "communes": "21005 21057"})
    sivos_only = text(client.get("/administration/territoire?q=plaine&kind=sivos"))
    assert "SIVOS des Écoles de la Plaine" in sivos_only and "CC de la Plaine Dijonnaise</a>" not in sivos_only


def test_create_and_edit_a_sivos_with_its_members_and_epci(client, session, admin):
    response = client.post("/administration/territoire/sivos/nouveau", data={
        "name": "SIVOS des Trois Vallées", "siren": "200012345", "communes": "21005, 21057; 21001"})
    assert response.status_code == 302
    sivos = session.scalar(select(Sivos).where(Sivos.siren == "200012345"))
    assert sivos.epci.siren == "200000925"  # the EPCI of most of its members
    assert {c.insee for c in sivos.members} == {"21005", "21057", "21001"}
    assert sivos.population == 1500 + 339 + 416
    [created] = events("create_sivos")
    assert created.after["communes"] == ["21001", "21005", "21057"] and created.actor_id == admin.id

    response = client.post(f"/administration/territoire/sivos/{sivos.id}/modifier", data={
        "name": "SIVOS des Deux Vallées", "siren": "200012345", "communes": "21005 21057",
        "epci": "242100410"})
    assert response.status_code == 302
    session.expire_all()
    assert (sivos.name, sivos.epci.siren, sivos.population) == ("SIVOS des Deux Vallées", "242100410", 1500 + 339)
    [updated] = events("update_sivos")
    assert updated.before["name"] == "SIVOS des Trois Vallées" and updated.after["communes"] == ["21005", "21057"]
    page = text(client.get(f"/administration/territoire/{sivos.id}"))
    assert "SIVOS des Deux Vallées" in page and "Genlis" not in page


def test_a_bad_sivos_form_is_answered_in_french_and_saves_nothing(client, session, admin):
    before = sivos_count()
    response = client.post("/administration/territoire/sivos/nouveau", data={
        "name": "X", "siren": "200012345", "communes": "21001 99999"})
    assert response.status_code == 400 and "Communes inconnues : 99999" in text(response)
    response = client.post("/administration/territoire/sivos/nouveau", data={"name": "X", "siren": "12", "communes": "21001"})
    assert response.status_code == 400 and "9 chiffres" in text(response)
    assert sivos_count() == before


CSV_WITH_BAD_LINES = (
    "siren;nom;communes;epci\n"
    "200012345;SIVOS bon;21005 21057;\n"          # line 2: good
    "12;SIVOS au SIREN court;21001;\n"             # line 3: bad SIREN
    "200012346;SIVOS aux communes inconnues;99998 21001;\n"  # line 4: unknown commune
    "200012347;SIVOS bon aussi;21001;\n"           # line 5: good
    "200012347;SIVOS en double;21001;\n"           # line 6: duplicate SIREN in the file
    "200012348;SIVOS sans commune;;\n"             # line 7: no member
    "200012349;SIVOS à l'EPCI inconnu;21001;999999999\n"  # line 8: unknown EPCI
)


def test_a_csv_with_bad_lines_reports_each_one_and_imports_none(client, session, admin):
    before = sivos_count()
    response = upload(client, "/administration/territoire/sivos/import", CSV_WITH_BAD_LINES.encode(), "sivos.csv")
    assert response.status_code == 400
    page = text(response)
    problems = re.findall(r"<li>(Ligne \d+ : [^<]*)</li>", page)
    assert problems == [
        "Ligne 3 : SIREN invalide : « 12 » (9 chiffres attendus).",
        "Ligne 4 : Communes inconnues : 99998.",
        "Ligne 6 : SIREN 200012347 déjà présent ligne 5.",
        "Ligne 7 : Un SIVOS doit avoir au moins une commune membre.",
        "Ligne 8 : EPCI inconnu : 999999999.",
    ]
    assert "Rien n'a été enregistré" in page
    assert sivos_count() == before  # not even the good lines 2 and 5
    assert events("import_sivos") == []


def test_a_good_csv_imports_every_line_and_is_audited(client, session, admin):
    content = (b"siren,nom,communes\n200012345,SIVOS un,21005 21057\n200012347,SIVOS deux,21001\n")
    response = upload(client, "/administration/territoire/sivos/import", content, "sivos.csv")
    assert response.status_code == 302
    assert {s.name for s in session.scalars(select(Sivos))} >= {"SIVOS un", "SIVOS deux"}
    [event] = events("import_sivos")
    assert event.after == {"count": 2, "siren": ["200012345", "200012347"]}


def test_a_csv_without_the_columns_or_not_utf8_is_refused(client, session, admin):
    response = upload(client, "/administration/territoire/sivos/import", b"a,b\n1,2\n", "x.csv")
    assert response.status_code == 400 and "colonnes manquantes : siren, nom, communes" in text(response)
    response = upload(client, "/administration/territoire/sivos/import", "siren,nom,communes\n1,é,2".encode("latin-1"), "x.csv")
    assert response.status_code == 400 and "UTF-8" in text(response)


def test_changing_the_ville_centre_of_an_epci(client, session, admin):
    plaine = factories.epci("200000925")
    izier = factories.commune("21319")
    agencourt = factories.commune("21001")  # not a member
    response = client.post(f"/administration/territoire/epci/{plaine.id}/ville-centre", data={"commune": izier.id})
    assert response.status_code == 302
    session.expire_all()
    assert plaine.ville_centre_id == izier.id
    [event] = events("change_ville_centre")
    assert event.before == {"ville_centre": "Genlis"} and event.after == {"ville_centre": izier.name}
    refused = client.post(f"/administration/territoire/epci/{plaine.id}/ville-centre", data={"commune": agencourt.id})
    assert refused.status_code == 400
    session.expire_all()
    assert plaine.ville_centre_id == izier.id


def test_attach_and_detach_agents_of_a_collectivite(client, session, admin):
    agencourt = factories.commune("21001")
    elsewhere = factories.user("applicant", collectivite=factories.commune("21005"), full_name="Marc Ailleurs")
    session.commit()
    # An existing applicant account moves here, approved.
    response = client.post(f"/administration/territoire/{agencourt.id}/agents",
                           data={"full_name": "Marc Ailleurs", "email": elsewhere.email})
    assert response.status_code == 302
    session.expire_all()
    assert (elsewhere.collectivite_id, elsewhere.approved_by_id) == (agencourt.id, admin.id)
    [moved] = events("attach_agent")
    assert moved.before["collectivite"] != moved.after["collectivite"] == "Agencourt"
    # An unknown address is invited as an agent of Agencourt.
    response = client.post(f"/administration/territoire/{agencourt.id}/agents",
                           data={"full_name": "Léa Nouvelle", "email": "lea@agencourt.exemple.fr"})
    assert response.status_code == 302
    lea = accounts.find_user_by_email("lea@agencourt.exemple.fr")
    assert (lea.role, lea.collectivite_id, lea.is_approved, lea.email_confirmed_at) == ("applicant", agencourt.id, True, None)
    assert session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "account_invitation",
                                                      OutboxMessage.key.startswith(f"account:{lea.id}:")))
    page = text(client.get(f"/administration/territoire/{agencourt.id}"))
    assert "Marc Ailleurs" in page and "Léa Nouvelle" in page
    # A staff address cannot become an agent.
    staff = factories.user("finance")
    session.commit()
    refused = client.post(f"/administration/territoire/{agencourt.id}/agents",
                          data={"full_name": "X", "email": staff.email})
    assert refused.status_code == 400 and "personnel de la Région" in text(refused)
    # Detaching deactivates the account; its history stays.
    assert client.post(f"/administration/territoire/agents/{elsewhere.id}/detacher").status_code == 302
    session.expire_all()
    assert elsewhere.active is False
    assert len(events("detach_agent")) == 1


def _newer_file(changes: dict[str, int]) -> bytes:
    data = json.loads(DATA_FILE.read_text(encoding="utf-8"))
    for row in data["communes"]:
        if row["code"] in changes:
            row["population"] = changes[row["code"]]
    data["metadata"]["population"]["communes"]["year"] = 2024
    return json.dumps(data, ensure_ascii=False).encode("utf-8")


def test_the_reference_preview_lists_a_commune_crossing_1000_and_changes_nothing_until_confirmed(
        client, session, admin):
    agencourt = factories.commune("21001")  # 416 inhabitants
    ahuy = factories.commune("21003")  # 1,718 inhabitants
    agey = factories.commune("21002")  # 265 inhabitants
    submitted = factories.dossier("received", aid=1, collectivite=agencourt)
    draft = factories.dossier("draft", aid=1, collectivite=agencourt)
    session.commit()
    content = _newer_file({"21001": 1000, "21003": 999, "21002": 300})

    response = upload(client, "/administration/territoire/referentiel", content, "bfc-2024.json")
    assert response.status_code == 200
    page = text(response)
    crossings = re.sub(r"<[^>]+>", "", page.split('data-testid="crossings"')[1].split("</section>")[0])
    assert "Agencourt (commune 21001) : 416 → 1 000 habitants — seuil de 1 000 habitants · 1 brouillon" in crossings
    assert "Ahuy (commune 21003) : 1 718 → 999 habitants — seuil de 1 000 habitants" in crossings
    assert "Agey" not in crossings  # 265 → 300 crosses nothing
    assert "3 changements de population" in page
    session.expire_all()
    assert (agencourt.population, ahuy.population) == (416, 1718)  # nothing applied yet
    digest = re.search(r'name="digest" value="([0-9a-f]{64})"', response.get_data(as_text=True)).group(1)

    response = client.post("/administration/territoire/referentiel/appliquer", data={"digest": digest})
    assert response.status_code == 302
    session.expire_all()
    assert (agencourt.population, agencourt.population_year, ahuy.population, agey.population) == (
        1000, 2024, 999, 300)
    assert submitted.population == 416  # frozen at submission
    assert draft.population is None
    [event] = events("refresh_territory")
    assert event.after == {"created": 0, "updated": 3685}  # every commune: the year is 2024 now
    assert "Agencourt : 416 → 1000 habitants" in event.reason


def test_a_file_that_is_not_reference_data_is_refused_in_french(client, session, admin):
    response = upload(client, "/administration/territoire/referentiel", b"{\"x\": 1}", "faux.json")
    assert response.status_code == 400 and "format des données territoriales" in text(response)
    response = upload(client, "/administration/territoire/referentiel", b"\xff\xfe", "faux.json")
    assert response.status_code == 400 and "JSON" in text(response)
    response = client.post("/administration/territoire/referentiel/appliquer", data={"digest": "0" * 64})
    assert response.status_code == 400 and "plus disponible" in text(response)
    assert session.scalar(select(Commune.population).where(Commune.insee == "21001")) == 416
