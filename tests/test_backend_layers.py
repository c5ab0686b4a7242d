"""The backends' layer rule, read from the imports: only the composition root chooses a backend.

Everything else sees the ports (`chatserver.ports`) and asks for an optional capability through a
protocol there, so no module outside the root can name a backend class to check or construct it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import chatserver

PACKAGE = Path(chatserver.__file__).parent
BACKENDS = "chatserver.backends"
# app.py wires the seams; cli.py opens the Redis deny list for its commands; abuse.py keeps its
# per-address buckets in this node's memory by design (never shared).
MAY_IMPORT_BACKENDS = {"app.py", "cli.py", "abuse.py"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_only_the_composition_root_imports_a_backend() -> None:
    offenders = {
        str(path.relative_to(PACKAGE))
        for path in _modules()
        if not path.is_relative_to(PACKAGE / "backends")
        and str(path.relative_to(PACKAGE)) not in MAY_IMPORT_BACKENDS
        and any(name == BACKENDS or name.startswith(BACKENDS + ".") for name in _imports(path))
    }
    assert not offenders


def test_backends_depend_on_the_ports_not_on_the_gateway() -> None:
    allowed = ("chatserver.ports", "chatserver.token_bucket", BACKENDS)
    for path in (PACKAGE / "backends").rglob("*.py"):
        for name in _imports(path):
            if name.startswith("chatserver"):
                assert name.startswith(allowed), f"{path.relative_to(PACKAGE)} imports {name}"


def test_every_script_is_shipped_and_names_its_inputs() -> None:
    from chatserver.backends.redis.conn import lua_script

    scripts = sorted((PACKAGE / "backends" / "redis" / "lua").glob("*.lua"))
    assert scripts
    for path in scripts:
        text = lua_script(path.stem)
        body = [line for line in text.splitlines() if not line.lstrip().startswith("local ")]
        # KEYS[n] and ARGV[n] appear only where a local names them, at the top.
        assert not any("KEYS[" in line or "ARGV[" in line for line in body), path.name
