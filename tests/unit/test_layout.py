"""The package's shape: no import cycles among lab's modules, and no module over ~400 lines, so the folder layout
keeps showing the architecture (README "How it works"). Read from the source with ast; nothing is imported."""
from __future__ import annotations

import ast
from pathlib import Path

from tests import CHECKOUT

LAB = CHECKOUT / "lab"
MAX_LINES = 420
#: modules over MAX_LINES that are still to be split, with the reason
TOO_LONG: dict[str, str] = {}
#: a module is a node; a package's __init__ is the package's own name
ALLOWED_CYCLES: set[frozenset[str]] = set()


def module_name(path: Path) -> str:
    parts = path.relative_to(CHECKOUT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(LAB.rglob("*.py"))}


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The lab modules `name` imports, at any depth of its code (a function-level import is still a dependency)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports(name, path, set(mods)) for name, path in mods.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def without_package_faces(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """A package's __init__ that only hands names on is not a dependency of its own modules: an edge from a module
    inside a package to the package itself (importing a sibling through the face) is dropped."""
    return {v: {w for w in ws if not v.startswith(w + ".")} for v, ws in edges.items()}


def test_lab_has_no_import_cycles():
    found = [c for c in cycles(without_package_faces(graph())) if frozenset(c) not in ALLOWED_CYCLES]
    assert not found, f"import cycles: {found}"


def test_no_module_is_over_400_lines():
    long = {name: len(path.read_text().splitlines()) for name, path in modules().items()
            if len(path.read_text().splitlines()) > MAX_LINES and name not in TOO_LONG}
    assert not long, f"split these (or name them in TOO_LONG with the reason): {long}"


def test_the_cycle_finder_finds_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
