"""No import cycle between the packages of ``instruction`` (and ``worker``): the graph of which
package imports which, built from the source with ``ast`` (imports inside functions included),
has no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


PACKAGES = {path.parent.name for path in (ROOT / "instruction").glob("*/__init__.py")}
# Top-level modules every package may use: they import no package but the pure rules.
SHARED = ("clock", "config", "db", "errors")


def package_of(module: str) -> str | None:
    """``instruction.dossiers.services`` -> ``instruction.dossiers``, ``worker.tasks`` ->
    ``worker``; a top-level module (``instruction.db``, ``instruction.cli``…) or another library:
    None. (The top-level modules that wire the packages, the app factory, ``models``, ``cli``,
    ``demo``, are above them all; the shared ones are checked by ``test_shared_modules…``.)"""
    parts = module.split(".")
    if parts[0] == "worker":
        return "worker"
    if parts[0] != "instruction" or len(parts) == 1 or parts[1] not in PACKAGES:
        return None
    return ".".join(parts[:2])


def _runtime_nodes(tree: ast.AST):
    """Every node except the bodies of ``if TYPE_CHECKING:`` (imports for annotations only)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
        yield node


def test_imports_for_annotations_only_are_left_out():
    tree = ast.parse("import a\nif TYPE_CHECKING:\n    import b\nelse:\n    import c\n"
                     "if typing.TYPE_CHECKING:\n    import d\ndef f():\n    import e\n")
    found = {alias.name for node in _runtime_nodes(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert found == {"a", "c", "e"}


def imports_of(path: Path) -> set[str]:
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = module.split(".")[: len(module.split(".")) - node.level + (path.name == "__init__.py")]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            found |= {f"{target}.{alias.name}" for alias in node.names}
    return found


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for folder in ("instruction", "worker"):
        for path in (ROOT / folder).rglob("*.py"):
            source = package_of(".".join(path.relative_to(ROOT).with_suffix("").parts))
            if source is None:  # instruction/__init__.py: the app factory wires every package
                continue
            targets = {package_of(name) for name in imports_of(path)} - {None, source}
            # `from instruction import clock` names the module instruction.clock
            graph.setdefault(source, set()).update(t for t in targets if t is not None)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary cycle found by a depth-first search (each reported once, rotated)."""
    found: set[tuple[str, ...]] = set()

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt in path:
                cycle = path[path.index(nxt):]
                start = cycle.index(min(cycle))
                found.add(tuple(cycle[start:] + cycle[:start]))
            elif len(path) < 12:
                visit(nxt, [*path, nxt])

    for node in sorted(graph):
        visit(node, [node])
    return [list(c) for c in sorted(found)]


def tangles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one package (Tarjan): the packages that
    import each other, directly or not."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_the_packages():
    graph = package_graph()
    assert "instruction.dossiers" in graph["instruction.portal"]
    assert "instruction.rules" in graph["instruction.dossiers"]


def test_shared_modules_import_no_package():
    found = {name: sorted({package_of(i) for i in imports_of(ROOT / "instruction" / f"{name}.py")}
                          - {None, "instruction.rules"}) for name in SHARED}
    assert found == {name: [] for name in SHARED}


def test_the_tangle_finder():
    assert tangles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
    assert tangles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_packages():
    """Issue 9: no package imports, directly or not, a package that imports it."""
    graph = package_graph()
    assert tangles(graph) == []
    assert cycles(graph) == []


def test_the_worker_and_the_blueprints_stand_apart():
    graph = package_graph()
    assert "worker" not in graph["instruction.notifications"]  # the worker gives its publisher
    # The runner imports no job: the app gives it each package's (instruction.register_jobs).
    assert graph["instruction.notifications"] <= {"instruction.rules", "instruction.web"}
    assert graph["instruction.web"] <= {"instruction.rules"}
    # The audit chain is handed its journal (dossiers.models.AuditEvent): it imports no dossier.
    assert graph["instruction.audit"] <= {"instruction.rules"}
    # What a person's account holds (their personal data) is read by the admin, above the dossiers.
    assert graph["instruction.accounts"] <= {"instruction.notifications", "instruction.rules",
                                             "instruction.territory", "instruction.web"}


def test_the_team_is_below_the_pages_that_show_it():
    """dossiers < teamwork (notes, labels, thread, digest) < backoffice, portal (the pages): the
    people on a dossier are the dossier's (``dossiers.team``), and the team's routes are the UI
    packages' (``backoffice.teamwork_views``, ``portal.thread_views``, ``admin.labels_views``)."""
    graph = package_graph()
    assert "instruction.teamwork" not in graph["instruction.dossiers"]
    assert not graph["instruction.teamwork"] & {"instruction.backoffice", "instruction.portal", "instruction.admin"}
    assert "instruction.backoffice" not in graph["instruction.portal"]


def test_the_acts_are_below_the_dossiers_and_the_file_store_below_both():
    graph = package_graph()
    # The legal acts sit below the dossiers, as the notifications do: the dossier services call
    # them, handing them the dossier. Their download is served by the documents, above both.
    assert not graph["instruction.acts"] & {"instruction.dossiers", "instruction.documents"}
    # The file store (stored files, their download headers) is under the documents and the acts.
    assert graph["instruction.storage"] == set()
