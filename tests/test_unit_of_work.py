"""One unit of work per request: no module of a blueprint commits or rolls back; views run their
services through ``instruction.web.actions`` (``perform`` / ``attempt``), the one place that does."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INSTRUCTION = ROOT / "instruction"
UNIT_OF_WORK = INSTRUCTION / "web" / "actions.py"
# Ends a failed transaction in the 503 handler, when the database connection is what failed.
ALLOWED = {("instruction/web/__init__.py", "rollback")}


def transaction_calls(source: str) -> list[tuple[int, str]]:
    return [(node.lineno, node.func.attr) for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in {"commit", "rollback"}]


def blueprint_modules() -> list[Path]:
    """Every module of a package that declares a blueprint, and everything under ``web/``."""
    packages = {path.parent for path in INSTRUCTION.rglob("*.py") if "Blueprint(" in path.read_text(encoding="utf-8")}
    modules = {path for package in packages for path in package.glob("*.py")
               if path.name == "views.py" or path.name.endswith("_views.py")
               or "Blueprint(" in path.read_text(encoding="utf-8")}
    modules |= set((INSTRUCTION / "web").rglob("*.py"))
    return sorted(modules - {UNIT_OF_WORK})


def test_the_guard_sees_commits_and_rollbacks():
    assert transaction_calls("db.session.commit()\nsession.rollback()") == [(1, "commit"), (2, "rollback")]
    assert transaction_calls("perform(service, x)") == []


def test_the_guard_looks_at_the_views():
    names = {str(path.relative_to(ROOT)) for path in blueprint_modules()}
    assert {"instruction/accounts/views.py", "instruction/portal/views.py",
            "instruction/notifications/views.py", "instruction/backoffice/views.py",
            "instruction/admin/views.py", "instruction/web/__init__.py"} <= names


def test_no_view_commits_or_rolls_back():
    found = []
    for path in blueprint_modules():
        name = str(path.relative_to(ROOT))
        for line, call in transaction_calls(path.read_text(encoding="utf-8")):
            if (name, call) not in ALLOWED:
                found.append(f"{name}:{line}: {call}()")
    assert found == []


def test_no_get_route_writes(app, session):
    """The GET routes that used to commit (following a notification) are POST now."""
    rules = {rule.endpoint: rule.methods for rule in app.url_map.iter_rules()}
    assert "GET" not in rules["notifications.follow"]
