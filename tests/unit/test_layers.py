"""The rooms (vocabd/<room>: a top-level module or subpackage) import downward only: no import cycle between
rooms, counting every import, function-local and TYPE_CHECKING ones included."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "vocabd"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, module: str) -> set[str]:
    """Every module `path` imports, absolute or relative, wherever the import statement sits."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from vocabd.inbox import ingest`
    return found


def room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "vocabd" and len(parts) > 1 else None


def room_graph() -> dict[str, dict[str, list[str]]]:
    """room -> room it imports -> the module edges that make it so."""
    rooms = {p.stem for p in PACKAGE.glob("*.py")} | {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in PACKAGE.rglob("*.py"):
        module = module_name(path)
        for target in imported(path, module):
            a, b = room(module), room(target)
            if a and b and a != b and b in rooms:
                graph[a][b].append(f"{module} -> {target}")
    return graph


def cycles(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """The strongly connected components of more than one room (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                found.append(sorted([v, *component]))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_room_imports_a_room_that_imports_it_back():
    graph = room_graph()
    found = cycles(graph)
    detail = [f"{a} -> {b}: {graph[a][b][:2]}" for c in found for a in c for b in graph[a] if b in c]
    assert not found, f"import cycles between rooms: {found}\n" + "\n".join(detail)


def test_the_check_finds_a_cycle_through_a_function_local_import(tmp_path):
    graph = {"a": {"b": ["vocabd.a -> vocabd.b"]}, "b": {"c": ["..."]}, "c": {"a": ["(function-local)"]}}
    assert cycles(graph) == [["a", "b", "c"]]
    source = tmp_path / "mod.py"
    source.write_text("def f():\n    from vocabd.chain import record\n    from . import sibling\n")
    assert {"vocabd.chain", "vocabd.chain.record", "vocabd.x", "vocabd.x.sibling"} <= imported(source, "vocabd.x.mod")
