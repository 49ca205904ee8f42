"""One clock: outside ``instruction/clock.py`` no module of the application or the worker reads the
current instant itself, and services take ``now`` from their caller."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLOCK = ROOT / "instruction" / "clock.py"
# Calls that read the instant: datetime.now(), datetime.utcnow(), date.today(), time.time()…
READS = {"now", "utcnow", "today", "time", "monotonic", "localtime", "gmtime"}
OWNERS = {"datetime", "date", "time"}
# Reads that must stay on the wall clock, and why.
WALL_CLOCK = {
    "instruction/accounts/limiter.py": "Flask-Limiter's windows end at a time.time() instant",
}


def clock_reads(source: str) -> list[int]:
    """Lines of ``source`` that read the instant without ``instruction.clock``."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in READS:
            owner = node.func.value
            name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", None)
            if name in OWNERS:
                lines.append(node.lineno)
        if isinstance(node, ast.Name) and node.id == "utcnow":
            lines.append(node.lineno)
    return lines


def test_the_guard_sees_the_usual_ways_of_reading_the_clock():
    assert clock_reads("from datetime import datetime, UTC\nx = datetime.now(UTC)") == [2]
    assert clock_reads("import datetime\nx = datetime.datetime.now()") == [2]
    assert clock_reads("from datetime import date\nx = date.today()") == [2]
    assert clock_reads("import time\nx = time.time()") == [2]
    assert clock_reads("from x import utcnow\ny = utcnow()") == [2]
    assert clock_reads("from instruction import clock\nx = clock.now()") == []


def test_only_the_clock_module_reads_the_instant():
    found = []
    for folder in ("instruction", "worker"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == CLOCK or str(path.relative_to(ROOT)) in WALL_CLOCK:
                continue
            for line in clock_reads(path.read_text(encoding="utf-8")):
                found.append(f"{path.relative_to(ROOT)}:{line}")
    assert found == []


def test_services_take_now_from_their_caller():
    """Every public service that has a ``now`` parameter requires it (no ``now=None`` falling back
    on a clock of its own)."""
    from instruction.accounts import services as accounts
    from instruction.documents import services as documents
    from instruction.dossiers import jobs as dossier_jobs
    from instruction.dossiers import services as dossiers
    from instruction.notifications import delivery, jobs
    from instruction.portal import services as portal
    from instruction.teamwork import digest

    optional = []
    for module in (accounts, documents, dossiers, delivery, jobs, dossier_jobs, digest, portal):
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if function.__module__ != module.__name__:
                continue
            parameter = inspect.signature(function).parameters.get("now")
            if parameter is not None and parameter.default is not inspect.Parameter.empty:
                optional.append(f"{module.__name__}.{name}")
    assert optional == []
    assert "now" in inspect.signature(dossiers.grant).parameters  # the check looks where it should
