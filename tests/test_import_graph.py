"""No import cycle in chatserver/ or in web/src: every module's imports, parsed, form a DAG.

Python: every `import` / `from ... import` anywhere in a module (module level, inside functions,
under `if TYPE_CHECKING:`), resolved to the chatserver module it names. TypeScript: every relative
`import ... from "./x.js"` and `export ... from "./x.js"` in web/src, type-only imports included
(a type cycle is still a cycle a reader has to untangle). A failure prints each cycle found.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "chatserver"
WEB_SRC = ROOT / "web" / "src"

# Edges that close a cycle known today, each to be removed by the work named beside it. The
# test below fails once such an edge is gone, so that the exception goes with it.
# Import edges allowed to close a cycle, each with the reason and the issue that removes it. None
# today (issue 16 removed the last one, app -> gateway -> moderation_handlers -> app.key_path).
KNOWN_PYTHON_EDGES: set[tuple[str, str]] = set()


# --- the graphs ------------------------------------------------------------------------------


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def python_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
    graph: dict[str, set[str]] = {name: set() for name in files}

    def resolve(name: str) -> str | None:
        while name and name not in files:  # `from a.b import c`: a.b.c if a module, else a.b
            name = name.rpartition(".")[0]
        return name or None

    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                if target.split(".")[0] != "chatserver":
                    continue
                found = resolve(target)
                if found is not None and found != name:
                    graph[name].add(found)
    return graph


# `... from "./x.js"` (import or export, type-only or not, over several lines), `import "./x.js"`
# and `import("./x.js")`.
TS_IMPORT = re.compile(
    r"""(?:\bfrom\s*|\bimport\s*\(?\s*)["'](\.{1,2}/[^"']+)["']""",
)
TS_COMMENT = re.compile(r"/\*.*?\*/|(?<![:\"'])//[^\n]*", re.DOTALL)


def typescript_graph() -> dict[str, set[str]]:
    files = sorted(p for p in WEB_SRC.rglob("*.ts"))
    names = {p: p.relative_to(WEB_SRC).as_posix() for p in files}
    graph: dict[str, set[str]] = {name: set() for name in names.values()}
    for path, name in names.items():
        text = TS_COMMENT.sub("", path.read_text())
        for spec in TS_IMPORT.findall(text):
            target = (path.parent / spec).resolve()
            stem = target.with_suffix("") if target.suffix in (".js", ".ts") else target
            for candidate in (
                stem.with_suffix(".ts"),
                stem.with_suffix(".d.ts"),
                stem / "index.ts",
            ):
                if candidate in names:
                    if names[candidate] != name:
                        graph[name].add(names[candidate])
                    break
    return graph


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """One cycle through each strongly connected component with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:  # Tarjan; the graphs are small enough for recursion
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: set[str] = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)

    found: list[list[str]] = []
    for component in components:
        start = min(component)
        # Shortest way back to `start` inside the component (breadth first).
        paths = {start: [start]}
        queue = [start]
        cycle: list[str] | None = None
        while queue and cycle is None:
            node = queue.pop(0)
            for nxt in sorted(graph[node]):
                if nxt not in component:
                    continue
                if nxt == start:
                    cycle = [*paths[node], start]
                    break
                if nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    queue.append(nxt)
        assert cycle is not None
        found.append(cycle)
    return found


def _report(found: list[list[str]]) -> str:
    return "import cycles:\n" + "\n".join("  " + " -> ".join(cycle) for cycle in found)


# --- the tests -------------------------------------------------------------------------------


def test_graphs_are_found() -> None:
    python = python_graph()
    assert "chatserver.app" in python
    assert "chatserver.client.room" in python["chatserver.client.connection"]
    assert "chatserver.transport" in python["chatserver.gateway.socket_server"]
    web = typescript_graph()
    assert "main.ts" in web
    assert "console/deps.ts" in web["console/index.ts"]


def test_the_cycle_finder_finds_cycles() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_chatserver() -> None:
    graph = python_graph()
    for source, target in KNOWN_PYTHON_EDGES:
        graph[source].discard(target)
    found = cycles(graph)
    assert not found, _report(found)


def test_known_exceptions_still_exist() -> None:
    """When the work named beside an exception lands, delete the exception with it."""
    graph = python_graph()
    gone = {(s, t) for s, t in KNOWN_PYTHON_EDGES if t not in graph.get(s, set())}
    assert not gone, f"these edges are gone: remove them from KNOWN_PYTHON_EDGES: {gone}"


def test_no_import_cycle_in_web_src() -> None:
    found = cycles(typescript_graph())
    assert not found, _report(found)
