"""rooms/ is a pure core: it imports no framework and reads no clock or entropy."""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import rooms

ROOMS_DIR = Path(rooms.__path__[0])
MODULES = sorted(f"rooms.{info.name}" for info in pkgutil.iter_modules([str(ROOMS_DIR)]))

FORBIDDEN_LOADED = ("asyncio", "aiohttp", "socketio", "engineio", "redis", "chatserver")
FORBIDDEN_IMPORTS = frozenset(
    {
        *FORBIDDEN_LOADED,
        "time",
        "random",
        "os",
        "secrets",
        "uuid",
        "socket",
        "threading",
        "subprocess",
        "io",
        "pathlib",
        "logging",
    }
)
# Attribute calls that read the clock even if `datetime` itself were imported.
FORBIDDEN_CALLS = frozenset({"now", "utcnow", "today", "time", "monotonic", "perf_counter"})


def test_modules_found() -> None:
    assert "rooms.decide" in MODULES
    assert len(MODULES) >= 10


def test_fresh_interpreter_loads_no_framework() -> None:
    script = (
        "import importlib, json, sys\n"
        f"for name in {MODULES!r}: importlib.import_module(name)\n"
        f"print(json.dumps([m for m in sys.modules if m.split('.')[0] in {FORBIDDEN_LOADED!r}]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(result.stdout) == []


def _imported_roots(tree: ast.AST) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in {"__import__", "open", "eval", "exec"}
        ):
            roots.add(node.func.id)
    return roots


def test_no_forbidden_imports_in_source() -> None:
    offenders: dict[str, set[str]] = {}
    for path in sorted(ROOMS_DIR.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        bad = _imported_roots(tree) & (FORBIDDEN_IMPORTS | {"__import__", "open", "eval", "exec"})
        if bad:
            offenders[path.name] = bad
    assert offenders == {}


def test_no_clock_reads_in_source() -> None:
    offenders: list[str] = []
    for path in sorted(ROOMS_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "datetime":
                offenders.append(f"{path.name}: imports from datetime")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in FORBIDDEN_CALLS
            ):
                offenders.append(f"{path.name}:{node.lineno}: .{node.func.attr}()")
    assert offenders == []


def test_scanner_catches_forbidden_code() -> None:
    """The scanner itself works: it flags the things it is meant to flag."""
    sample = ast.parse(
        "import time\nfrom random import randint\nimport os.path\nx = datetime.now()\n"
    )
    assert {"time", "random", "os"} <= _imported_roots(sample)
    calls = [
        n.func.attr
        for n in ast.walk(sample)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
    ]
    assert "now" in calls
