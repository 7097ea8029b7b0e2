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


def top_level(body):
    """A module's statements, those inside top-level ``with``, ``if`` and ``try`` too."""
    for node in body:
        yield node
        if isinstance(node, ast.With | ast.If | ast.Try):
            yield from top_level(node.body)
            yield from top_level(getattr(node, "orelse", []))


def test_every_module_declares_its_public_names():
    """``__all__`` in every module of the package (not the peers' own code, which other
    systems run), naming only what the module defines or imports."""
    undeclared, unknown = [], []
    for path in PACKAGE.rglob("*.py"):
        if "peer_code" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        defined = set()
        declared = None
        for node in top_level(tree.body):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                defined.add(node.name)
            elif isinstance(node, ast.Import | ast.ImportFrom):
                defined |= {(a.asname or a.name).split(".")[0] for a in node.names}
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                    if isinstance(target, ast.Name):
                        defined.add(target.id)
                        if target.id == "__all__" and node.value is not None:
                            declared = ast.literal_eval(node.value)
        if declared is None:
            undeclared.append(module_name(path))
        else:
            unknown += [f"{module_name(path)}.{n}" for n in declared if n not in defined]
    assert not undeclared, f"modules without __all__: {sorted(undeclared)}"
    assert not unknown, f"__all__ names nothing by these names: {unknown}"


def test_tests_use_the_public_api():
    """No test imports a private name (a leading underscore) from the package."""
    private = []
    for path in Path(__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mlinfra_kit"):
                private += [
                    f"{path.name}: {node.module}.{a.name}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                ]
    assert not private, private


def test_a_long_module_says_why_in_its_docstring():
    """A module over 450 lines says in its docstring why it is one module ("Over 450 lines:")."""
    unexplained = []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > 450 and "Over 450 lines:" not in (
            ast.get_docstring(ast.parse(text)) or ""
        ):
            unexplained.append(path.relative_to(PACKAGE).as_posix())
    assert unexplained == []
