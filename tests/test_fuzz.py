"""Fuzzing every form and query parameter of every route, as every role that reaches it.

Property-based (hypothesis): random, oversized, unicode, negative and malformed values for each
parameter, sent with a valid CSRF token (protection on, as in production), by a client logged in
through the real form, on the real objects of ``tests/world.py``. Properties, for each request:

- never a 5xx (an exception escaping a view fails the test with the falsifying example);
- nothing saved that breaks a constraint: the database's own constraints, plus what it cannot
  check — the granted dossier is not edited, the audit chain still verifies.

The parameters are found, not listed: the fields of every form on every page each role sees,
plus every name the code of the route's package reads from ``request.args``/``request.form`` (a
scan of the sources). Each example makes one parameter hostile and gives the others values the
pages offer, so that the hostile one gets past the checks before it; some draw everything at random.
Routes come from the authorization matrix (``EXPECTED``): each is fuzzed as the roles it lets in.
Examples per route: ``FUZZ_EXAMPLES`` (default 2) plus two per parameter, at most
``FUZZ_MAX_EXAMPLES`` (12), shared among the roles the route lets in (at least 2 each).
"""

from __future__ import annotations

import inspect
import os
import re
from html.parser import HTMLParser
from io import BytesIO
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.exceptions import MethodNotAllowed, NotFound

from instruction.audit.services import verify_chain
from instruction.dossiers.models import Dossier
from tests import factories
from tests.test_authz_matrix import EXPECTED, LOGIN, _route_key, _url
from tests.world import ROLES, build_world, client_with, logged_in_cookies

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "2"))
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "12"))
SOURCES = Path(__file__).resolve().parent.parent / "instruction"
SKIPPED_FIELDS = {"csrf_token", "submit"}
KEPT_OUT = (LOGIN, 403, 404, 405)  # a role that does not reach the view: nothing to fuzz there


# --- where the parameters are found ----------------------------------------------------------------


class _Forms(HTMLParser):
    """``(method, action path, {field name: kind})`` of every form of a page, and the values the
    page offers for each field (``value=`` of inputs, options of selects)."""

    def __init__(self):
        super().__init__()
        self.forms: list[tuple[str, str, dict[str, str]]] = []
        self.offered: dict[str, set[str]] = {}
        self._current: tuple[str, str, dict[str, str]] | None = None
        self._select: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self._current = ((attrs.get("method") or "get").upper(), attrs.get("action") or "", {})
            self.forms.append(self._current)
        elif tag in ("input", "select", "textarea", "button") and self._current and attrs.get("name"):
            name = attrs["name"]
            self._current[2][name] = "file" if attrs.get("type") == "file" else "text"
            if tag == "select":
                self._select = name
            elif attrs.get("value") and attrs.get("type") not in ("hidden", "submit"):
                self.offered.setdefault(name, set()).add(attrs["value"])
        elif tag == "option" and self._select and attrs.get("value"):
            self.offered.setdefault(self._select, set()).add(attrs["value"])

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None
        elif tag == "select":
            self._select = None


NAME_READ = re.compile(r"""(?:args|form)(?:\.get|\.getlist|\.get_all)?[(\[]\s*["']([A-Za-z_][A-Za-z0-9_]*)["']""")


def names_read_by(app, endpoint: str) -> set[str]:
    """The parameter names the code of the endpoint's package reads literally from the query
    string or the form (``request.args.get("page")``, ``args["category"]``…)."""
    view = inspect.unwrap(app.view_functions[endpoint])
    package = Path(inspect.getsourcefile(view)).parent
    if package == SOURCES:
        return set()
    return {name for path in package.glob("*.py") for name in NAME_READ.findall(path.read_text(encoding="utf-8"))}


def discovered_forms(app, clients: dict[str, object], world) -> tuple[dict[str, dict[str, str]], dict[str, set[str]]]:
    """``"METHOD endpoint"`` -> fields, from the forms of every GET page as every role; and the
    values offered for each field name."""
    adapter = app.url_map.bind("localhost")
    found: dict[str, dict[str, str]] = {}
    offered: dict[str, set[str]] = {}
    for key, row in EXPECTED.items():
        method = _route_key(key).split(" ")[0]
        if method != "GET" or key.startswith(("GET static", "GET bootstrap")):
            continue
        url = _url(app, world, key, row)
        for client in clients.values():
            response = client().get(url)
            if "text/html" not in response.content_type:
                continue
            parser = _Forms()
            parser.feed(response.get_data(as_text=True))
            for name, seen in parser.offered.items():
                offered.setdefault(name, set()).update(seen)
            for form_method, action, fields in parser.forms:
                target = urlsplit(action).path or urlsplit(url).path
                try:
                    endpoint, _ = adapter.match(target, method=form_method)
                except (NotFound, MethodNotAllowed):
                    continue
                found.setdefault(f"{form_method} {endpoint}", {}).update(fields)
    return found, offered


# --- the values --------------------------------------------------------------------------------------

NASTY = [
    "", " ", "0", "-1", "-0,01", "1e309", "NaN", "inf", "²", "٣", "¹²", "9" * 25, "1" * 5000,
    "12 345,67", "1.234.567,89", "1,2,3", "0x1F", "+1", "1_000", "−5", "12,345678", "99999999999,99",
    "31/12/2021", "2026-02-30", "30/02/2026", "00/00/0000", "31/12/99999", "<script>alert(1)</script>",
    "' OR '1'='1", "../../../etc/passwd", "%00", "\x00", "a\x00b", "\r\nSet-Cookie: x=1", "\ud7ff",
    "//evil.example", "/\t/evil.example", "javascript:alert(1)", "🙂" * 100, "é" * 10000,
    "equipement", "logiciel", "licence", "cablage", "1", "2", "3", "36", "2147483648",
]

values = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=40),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.decimals(allow_nan=True, allow_infinity=True, places=None).map(str),
    st.integers(min_value=300, max_value=20_000).map(lambda n: "x" * n),
)
files = st.tuples(st.binary(max_size=2048), st.text(max_size=60))


HOSTILE = st.one_of(values, st.lists(values, min_size=2, max_size=3))
EVERYTHING = "*"


def parameters(names: dict[str, str], offered: dict[str, set[str]]):
    """The parameters of one request: each example makes one named parameter hostile and gives the
    others a value the pages offer (so the hostile one gets past the checks that come first), or
    (``*``) draws every parameter at random, present or not."""
    names = {n: kind for n, kind in names.items() if n not in SKIPPED_FIELDS}

    def valid(name: str):
        seen = sorted(offered.get(name, ()))
        return st.sampled_from(seen) if seen else None

    def hostile(name: str):
        return files if names[name] == "file" else HOSTILE

    @st.composite
    def draw(draw_one):
        target = draw_one(st.sampled_from([*sorted(names), EVERYTHING]))
        chosen = {}
        for name in sorted(names):
            if name == target:
                chosen[name] = draw_one(hostile(name))
            elif target == EVERYTHING:
                options = [s for s in (valid(name), hostile(name)) if s is not None]
                value = draw_one(st.one_of(st.none(), *options))
                if value is not None:
                    chosen[name] = value
            elif (strategy := valid(name)) is not None:
                chosen[name] = draw_one(strategy)
        return chosen

    return draw()


def _as_request_data(form: dict, csrf_token: str) -> dict:
    data: dict = {"csrf_token": csrf_token}
    for name, value in form.items():
        if isinstance(value, tuple):
            content, filename = value
            data[name] = (BytesIO(content), filename or "fichier")
        else:
            data[name] = value
    return data


# --- the properties ----------------------------------------------------------------------------------


def frozen_state(session, dossier_id: int) -> tuple:
    """What a granted dossier shows that nothing may edit (payments aside)."""
    session.expire_all()
    d = session.get(Dossier, dossier_id)
    return (d.state, d.title, d.requested_amount, d.granted_amount, d.computed_amount,
            [(line.category, line.label, line.amount_ht, line.pack, line.months) for line in d.lines])


def _token(client) -> str:
    page = client.get("/connexion" if client.get_cookie("session") is None else "/notifications/")
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.get_data(as_text=True))
    assert match, "no CSRF token on the page"
    return match.group(1)


@pytest.fixture
def fuzz_world(app, session, fresh_limiter, monkeypatch):
    monkeypatch.setattr("instruction.clock.now", lambda: factories.NOW)
    return build_world(session)


def _csrf_on(app, monkeypatch) -> None:
    """CSRF protection as in production, once the clients are logged in (the login helper posts
    without a token)."""
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)


def _examples(key: str, parameters: int) -> int:
    """The examples of one route, shared among the roles it lets in (each gets at least 2)."""
    reaching = sum(1 for role, _ in enumerate(ROLES) if EXPECTED[key][role] not in KEPT_OUT)
    return max(2, -(-min(EXAMPLES + 2 * parameters, MAX_EXAMPLES) // reaching))


def _fuzz_targets() -> list[tuple[str, str]]:
    return [(key, role) for key, row in EXPECTED.items() for role in ROLES
            if row[ROLES.index(role)] not in KEPT_OUT
            and not key.startswith(("GET static", "GET bootstrap"))]


_FORMS: dict[str, dict] = {}  # found once: the names do not depend on the objects' ids


def _session_of(app, user) -> tuple[dict[str, str], str]:
    """Cookies of a client logged in as ``user`` (None: anonymous) and its valid CSRF token."""
    client = client_with(app, logged_in_cookies(app, user))
    before, app.config["WTF_CSRF_ENABLED"] = app.config["WTF_CSRF_ENABLED"], True
    try:
        token = _token(client)  # forms render their token only while the protection is on
    finally:
        app.config["WTF_CSRF_ENABLED"] = before
    return {n: client.get_cookie(n).value for n in ("session", "remember_token")
            if client.get_cookie(n) is not None}, token


def _saved_data_holds(session, granted_id: int, frozen: tuple) -> None:
    assert frozen_state(session, granted_id) == frozen, "a granted dossier was edited"
    chain = verify_chain()
    assert chain.ok, chain.message


def _fuzz_route(app, session, role, key, method, url, cookies, token, strategy, examples, check):
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(params=strategy)
    def fuzz(params):
        savepoint = session.begin_nested()
        session.connection()
        try:
            if method == "POST":
                response = client_with(app, cookies).post(url, data=_as_request_data(params, token))
            else:
                response = client_with(app, cookies).get(url, query_string=params)
            assert response.status_code < 500, (
                f"{role} {key}: {response.status_code}\n{response.get_data(as_text=True)[:1500]}")
            check()
        finally:
            savepoint.rollback()
            session.expire_all()

    fuzz()


@pytest.mark.parametrize("role", ROLES)
def test_no_parameter_gives_a_500(app, session, fuzz_world, role, monkeypatch):
    world = fuzz_world
    if not _FORMS:
        everyone = {name: _session_of(app, world.users.get(name))[0] for name in ROLES}
        fields, offered = discovered_forms(
            app, {n: (lambda c=c: client_with(app, c)) for n, c in everyone.items()}, world)
        _FORMS.update(fields=fields, offered=offered)
    role_cookies, token = _session_of(app, world.users.get(role))
    session.commit()
    _csrf_on(app, monkeypatch)
    granted_id = world.dossiers["granted"].id
    frozen = frozen_state(session, granted_id)

    for key, target_role in _fuzz_targets():
        if target_role != role:
            continue
        row = EXPECTED[key]
        method, endpoint = _route_key(key).split(" ")
        url = _url(app, world, key, row)
        names = {name: "text" for name in names_read_by(app, endpoint)}
        names.update(_FORMS["fields"].get(_route_key(key), {}))
        if method == "GET":
            names = {n: "text" for n in names}  # a query string carries no file
        examples = _examples(key, len(names))
        _fuzz_route(app, session, role, key, method, url, role_cookies, token,
                    parameters(names, _FORMS["offered"]), examples,
                    check=lambda: _saved_data_holds(session, granted_id, frozen))


def test_path_arguments_are_fuzzed_too(app, session, fuzz_world, monkeypatch):
    """String arguments in the URL (token, SIREN, action, file name) with hostile values."""
    cookies = logged_in_cookies(app, fuzz_world.users["admin"])
    session.commit()
    _csrf_on(app, monkeypatch)

    @settings(max_examples=EXAMPLES * 4, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(value=st.one_of(st.sampled_from(NASTY), st.text(max_size=80)),
           path=st.sampled_from(["/inscription/confirmer/{}", "/mot-de-passe/{}", "/instruction/epci/{}",
                                 "/static/{}", "/bootstrap/static/{}"]))
    def fuzz(value, path):
        url = path.format(quote(value, safe=""))
        savepoint = session.begin_nested()
        session.connection()
        try:
            for method in ("GET", "POST"):
                response = client_with(app, cookies).open(url, method=method)
                assert response.status_code < 500, f"{method} {url}: {response.status_code}"
        finally:
            savepoint.rollback()
            session.expire_all()

    fuzz()


def test_the_granted_dossier_snapshot_can_fail(session):
    """The frozen-dossier property sees an edit (so the fuzzing would)."""
    dossier = factories.dossier("granted")
    session.flush()
    before = frozen_state(session, dossier.id)
    dossier.lines[0].label = "changé"
    session.flush()
    assert frozen_state(session, dossier.id) != before


def test_a_nul_character_in_a_form_is_a_french_400_and_saves_nothing(app, client, session, monkeypatch):
    """Found by the fuzzing: a reason holding U+0000 reached PostgreSQL (a 500)."""
    import html

    monkeypatch.setattr("instruction.clock.now", lambda: factories.NOW)
    dossier = factories.dossier("received")
    applicant = factories.applicant_of(dossier.collectivite)
    session.commit()
    factories.log_in(client, applicant)
    response = client.post(f"/portail/dossiers/{dossier.id}/retirer", data={"reason": "Projet\x00 abandonné"})
    assert response.status_code == 400
    assert "caractère invalide (caractère nul)" in html.unescape(response.get_data(as_text=True))
    session.expire_all()
    assert session.get(Dossier, dossier.id).state == "received"
    response = client.post(f"/portail/dossiers/{dossier.id}/retirer", data={"reason": "Projet abandonné"})
    assert response.status_code == 302 and session.get(Dossier, dossier.id).state == "withdrawn"
