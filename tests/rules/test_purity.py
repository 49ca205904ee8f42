"""instruction.rules is pure: no Flask, no SQLAlchemy, no clock."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

RULES = Path(__file__).resolve().parents[2] / "instruction" / "rules"
FORBIDDEN = ("flask", "flask_sqlalchemy", "flask_migrate", "flask_login", "flask_wtf",
             "sqlalchemy", "alembic", "celery", "redis", "psycopg")

# Runs in a fresh interpreter so that what other tests imported does not count. The parent
# package `instruction` is stood in by an empty module: its __init__ is the Flask app factory,
# which is not part of the rules and must not hide (or cause) an impure import in them.
PROBE = """
import importlib, json, pkgutil, sys, types
pkg = types.ModuleType("instruction")
pkg.__path__ = [{instruction!r}]
sys.modules["instruction"] = pkg
import instruction.rules
names = sorted(m.name for m in pkgutil.walk_packages(instruction.rules.__path__, "instruction.rules."))
for name in names:
    importlib.import_module(name)
print(json.dumps({{"modules": names, "loaded": sorted(sys.modules)}}))
"""


def test_rules_import_neither_flask_nor_sqlalchemy():
    code = PROBE.format(instruction=str(RULES.parent))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    report = json.loads(done.stdout)
    expected = {f"instruction.rules.{p.stem}" for p in RULES.glob("*.py") if p.stem != "__init__"}
    assert expected <= set(report["modules"]), "every module of the package was imported"
    impure = [name for name in report["loaded"] if name.split(".")[0] in FORBIDDEN]
    assert impure == []


def test_rules_never_read_the_clock():
    reads = []
    for path in RULES.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in {"now", "utcnow", "today"}:
                reads.append(f"{path.name}:{node.lineno}: .{node.attr}")
            if isinstance(node, ast.Import | ast.ImportFrom):
                modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                if "time" in modules:
                    reads.append(f"{path.name}:{node.lineno}: import time")
    assert reads == []


def test_rules_never_use_float():
    uses = []
    for path in RULES.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "float":
                uses.append(f"{path.name}:{node.lineno}")
            if isinstance(node, ast.Constant) and isinstance(node.value, float):
                uses.append(f"{path.name}:{node.lineno}: {node.value}")
    assert uses == []
