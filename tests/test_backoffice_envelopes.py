"""The envelope view of an EPCI: per aid (per commune for aid 1) the cap, consumed, pending and
remaining amounts, and the dossiers of the EPCI, its communes and its SIVOS that count toward it."""

from __future__ import annotations

import html as html_lib
import re

import pytest

from tests import factories

NBSP = "\u00a0"
LINE_A1 = [{"category": "equipement", "label": "Ordinateur", "amount_ht": "1200.00", "pack": 1}]


def view(client, siren="200000925", **args) -> str:
    response = client.get(f"/instruction/epci/{siren}", query_string=args)
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    return html_lib.unescape(response.get_data(as_text=True)).replace(NBSP, " ")


def scope_block(page: str, scope: str) -> str:
    start = page.index(f'data-scope="{scope}"')
    ends = [i for i in (page.find('data-scope="', start + 1), page.find("</section>", start)) if i != -1]
    return page[start:min(ends, default=len(page))]


def aid_section(page: str, aid: int) -> str:
    start = page.index(f'data-aid="{aid}"')
    return page[start:page.index("</section>", start)]


def figures(block: str) -> dict[str, str]:
    found = re.findall(r'data-figure="([\w-]+)">(.*?)</td>', block, re.S)
    return {k: re.sub(r"<[^>]+>|\(\d+\)", "", v).strip() for k, v in found}


@pytest.fixture
def territory(session):
    """Dossiers of the CC de la Plaine Dijonnaise (200000925), its communes and its ville centre,
    and one of another EPCI."""
    epci = factories.epci("200000925")
    d = {
        "a1_granted": factories.dossier("granted", aid=1, collectivite=factories.commune("21622"), lines=LINE_A1),
        "a1_pending": factories.dossier("received", aid=1, collectivite=factories.commune("21242"), lines=LINE_A1),
        "a2_granted": factories.dossier("granted", aid=2, collectivite=epci),
        "a2_pending": factories.dossier("received", aid=2, collectivite=epci),
        "a2_refused": factories.dossier("refused", aid=2, collectivite=epci),
        "a4_commune": factories.dossier("received", aid=4, collectivite=factories.commune("21005")),
        "a4_epci": factories.dossier("granted", aid=4, collectivite=epci),
        "a5_ville_centre": factories.dossier("received", aid=5, collectivite=factories.commune("21292")),
        "elsewhere": factories.dossier("granted", aid=2, collectivite=factories.epci("200070894")),
    }
    session.commit()
    return d


def test_envelopes_of_each_aid(client, session, territory):
    factories.staff_logged_in(client, session)
    page = view(client)
    assert "Enveloppes de CC de la Plaine Dijonnaise" in page
    assert "ville centre : Genlis" in page

    a2 = scope_block(aid_section(page, 2), "epci:200000925")
    assert figures(a2) == {"limit": "30 000,00 €", "consumed": "4 000,00 €", "paid": "0,00 €", "pending": "4 000,00 €",
                           "remaining": "26 000,00 €", "after-pending": "22 000,00 €"}
    assert territory["a2_granted"].reference in a2 and territory["a2_pending"].reference in a2
    assert territory["a2_refused"].reference not in page  # consumes nothing, asks nothing
    assert territory["elsewhere"].reference not in page

    a4 = scope_block(aid_section(page, 4), "epci-territoire:200000925")  # the EPCI and its communes together
    assert figures(a4)["consumed"] == "4 800,00 €" and figures(a4)["pending"] == "4 800,00 €"
    assert figures(a4)["limit"] == "40 000,00 €"
    assert territory["a4_commune"].reference in a4 and territory["a4_epci"].reference in a4

    a5 = scope_block(aid_section(page, 5), "epci-ville-centre:200000925")
    assert figures(a5)["pending"] == "4 000,00 €" and "Genlis" in a5

    # Aid 3 has the same kind of scope as aid 2 but its own envelope: caps are never shared.
    a3 = scope_block(aid_section(page, 3), "epci:200000925")
    assert "Aucun dossier en attente, attribué ou versé." in a3
    assert figures(a3)["consumed"] == "0,00 €" and figures(a3)["remaining"] == "30 000,00 €"


def test_aid_1_is_shown_per_commune(client, session, territory):
    factories.staff_logged_in(client, session)
    page = view(client)
    aid1 = aid_section(page, 1)
    tart = scope_block(aid1, "commune:21622")
    assert "Commune de Tart-le-Bas (21622)" in tart
    assert figures(tart)["limit"] == "2 500,00 €" and figures(tart)["consumed"] == "1 000,00 €"
    assert figures(tart)["remaining"] == "1 500,00 €"
    echigey = scope_block(aid1, "commune:21242")
    assert figures(echigey)["consumed"] == "0,00 €" and figures(echigey)["pending"] == "1 000,00 €"
    assert "autres communes de l'EPCI sans dossier pour cette aide" in aid1


def test_campaign_is_selectable_and_a_bad_one_is_ignored(client, session, territory):
    factories.staff_logged_in(client, session)
    page = view(client, campagne="pair-2021")
    assert "PAIR Bourgogne-Franche-Comté" in page.split("Campagne :")[1][:200]
    assert territory["a2_granted"].reference not in page
    page = view(client, campagne="nulle-part")
    assert "Campagne « nulle-part » inconnue : campagne en cours affichée." in page
    assert territory["a2_granted"].reference in page  # the demo campaign: latest deadline


def test_unknown_epci_is_404(client, session):
    factories.staff_logged_in(client, session)
    assert client.get("/instruction/epci/000000000").status_code == 404
    assert client.get("/instruction/epci/21001").status_code == 404  # a commune is not an EPCI


def test_finance_sees_the_envelopes_too(client, session, territory):
    factories.staff_logged_in(client, session, "finance")
    assert "epci:200000925" in view(client)


def test_a_busy_envelope_lists_its_latest_dossiers_and_sums_them_all(client, session):
    """25 pending dossiers of aid 2 (bulk: requested 1,000 + 37·i € each, none computed): the
    pending demand sums all 25, the page lists the 20 most recent and links to the queue."""
    epci = factories.epci("200000925")
    factories.bulk_dossiers(25, aid=2, collectivites=[epci], states=("received",))
    session.commit()
    factories.staff_logged_in(client, session)
    block = scope_block(aid_section(view(client), 2), "epci:200000925")
    # sum(1000 + 37·i for i in 0..24) = 25,000 + 37 × 300 = 36,100.00 €
    assert figures(block)["pending"] == "36 100,00 €"
    assert len(re.findall(r'<tr data-dossier="', block)) == 20
    # Bulk dossier i is submitted i minutes before dossier 0: the 20 most recent are 0 to 19.
    assert "-A2-000000<" in block and "-A2-000019<" in block and "-A2-000020<" not in block
    assert "Les 20 dossiers les plus récents sur 25 sont listés" in block
    assert "/instruction/?onglet=tous&amp;epci=200000925&amp;aide=2" in block or \
        "/instruction/?onglet=tous&epci=200000925&aide=2" in block
