"""The legal pages (mentions légales, données personnelles, déclaration d'accessibilité): public,
linked from every page's footer (error pages included), French defaults built from the service's
identity and the configuration, replaced by the admin's texts rendered escaped with a minimal
markup."""

from __future__ import annotations

import html as html_lib

import pytest

from instruction.legal.markup import render
from instruction.settings.services import update_legal_texts
from tests import factories
from tests.factories import NOW

PAGES = {"/mentions-legales": "Mentions légales", "/donnees-personnelles": "Données personnelles",
         "/accessibilite": "Déclaration d'accessibilité"}


def text(response) -> str:
    return html_lib.unescape(response.get_data(as_text=True)).replace("\u00a0", " ")


@pytest.mark.parametrize("path", PAGES)
def test_each_legal_page_is_public_with_its_title(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert f"<h1 class=\"h3 mb-3\">{PAGES[path]}</h1>" in text(response)


def test_the_footer_links_the_three_pages_everywhere(client, session, app):
    anonymous_pages = [client.get("/connexion"), client.get("/une-page-qui-n-existe-pas")]
    assert anonymous_pages[1].status_code == 404
    factories.staff_logged_in(client, session)
    pages = [*anonymous_pages, client.get("/instruction/")]
    with app.test_request_context():
        from instruction.web import standalone_page

        pages_html = [text(p) for p in pages] + [standalone_page(503, "Service indisponible", "Réessayez.")]
    for page in pages_html:
        footer = page[page.index("<footer"):]
        for path, title in PAGES.items():
            shown = "Accessibilité : partiellement conforme" if path == "/accessibilite" else title
            assert f'<a href="{path}">{shown}</a>' in footer


def test_the_accessibility_statement_says_what_was_measured(client):
    page = text(client.get("/accessibilite"))
    assert "est partiellement conforme avec le référentiel général d'amélioration de l'accessibilité (RGAA)" in page
    assert "Audit interne du 2 décembre 2026" in page
    assert "Cette déclaration a été établie le 2 décembre 2026" in page
    assert "<h2 class=\"h5 mt-4\">Contenus non accessibles</h2>" in page
    assert "<li>Les courriers au format PDF" in page
    assert "Défenseur des droits" in page and "Libre réponse 71120, 75342 Paris CEDEX 07" in page
    assert "aides-numeriques@bourgognefranchecomte.fr" in page  # the contact, from the identity


def test_the_privacy_notice_takes_its_retention_periods_from_the_configuration(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "DOCUMENT_RETENTION_DAYS", 1825)
    page = text(client.get("/donnees-personnelles"))
    assert "1 825 jours (5 ans) après la clôture du dossier" in page
    monkeypatch.setitem(app.config, "DOCUMENT_RETENTION_DAYS", 100)
    page = text(client.get("/donnees-personnelles"))
    assert "100 jours après la clôture du dossier" in page and "(5 ans)" not in page
    assert "Vos droits" in page and "CNIL" in page and "Pourquoi ces données" in page
    assert "30 jours au plus" in page  # the remember cookie, REMEMBER_COOKIE_DURATION


def test_the_admins_text_replaces_the_default_escaped(client, session):
    update_legal_texts({"legal_notice": "## Éditeur\nRégion <b>BFC</b>\n\n- un\n- deux <script>alert(1)</script>"},
                       now=NOW)
    session.commit()
    response = client.get("/mentions-legales")
    raw = response.get_data(as_text=True)
    assert '<h2 class="h5 mt-4">Éditeur</h2>' in raw
    assert "<p>Région &lt;b&gt;BFC&lt;/b&gt;</p>" in raw
    assert "<ul><li>un</li><li>deux &lt;script&gt;alert(1)&lt;/script&gt;</li></ul>" in raw
    assert "<script>alert" not in raw and "Directeur de la publication" not in raw  # no default left
    # The privacy notice keeps its retention periods whatever the admin wrote.
    update_legal_texts({"privacy_notice": "Texte de l'administrateur."}, now=NOW)
    session.commit()
    page = text(client.get("/donnees-personnelles"))
    assert "<p>Texte de l'administrateur.</p>" in page and 'data-testid="retention"' in page


def test_the_markup_is_minimal():
    assert render("Un\ndeux\n\nTrois") == "<p>Un<br>\ndeux</p>\n<p>Trois</p>"
    assert render("## Titre\nSuite") == '<h2 class="h5 mt-4">Titre</h2>\n<p>Suite</p>'
    assert render("- a\n- b") == "<ul><li>a</li><li>b</li></ul>"
    assert render("- a\nnot a list") == "<p>- a<br>\nnot a list</p>"
    assert render("<a href='x'>lien</a>") == "<p>&lt;a href=&#39;x&#39;&gt;lien&lt;/a&gt;</p>"
    assert render("\r\n\r\n  \n") == ""
