"""The package's import graph, read from the source (every import, those inside functions
too): no module imports one that imports it back, and the core that every notebook and
lesson stands on imports nothing above it."""

import ast
from pathlib import Path

import mlinfra_kit

PACKAGE = Path(mlinfra_kit.__file__).parent
#: The bottom layer: measuring, comparing, recording and finding notebooks.
CORE = {"measure", "comparison", "device", "environments", "progress", "notebooks", "results"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}

    def resolve(target: str) -> str | None:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target or None

    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mlinfra_kit"):
                targets = [
                    resolve(f"{node.module}.{a.name}") or resolve(node.module) for a in node.names
                ]
            elif isinstance(node, ast.Import):
                targets = [resolve(a.name) for a in node.names if a.name.startswith("mlinfra_kit")]
            graph[name] |= {t for t in targets if t and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_core_imports_nothing_above_it():
    graph = import_graph()
    core = {f"mlinfra_kit.{m}" for m in CORE}
    upward = {
        m: sorted(graph[m] - core - {"mlinfra_kit"})
        for m in core
        if graph[m] - core - {"mlinfra_kit"}
    }
    assert upward == {}, f"core modules importing upward: {upward}"


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
