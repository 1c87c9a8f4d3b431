"""The package's import structure: every module imports on its own in a
fresh interpreter, and no two modules import each other, directly or
through others (lazy imports inside functions included: a late import that
only dodges a cycle is still a cycle)."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Modules that run something when imported (``python -m parbench``).
SCRIPTS = {"parbench.__main__"}


def package_folders() -> dict[str, str]:
    """Import package name -> source folder, from setup.py's FOLDERS (the one
    place the layout is declared), plus ``parbench`` itself."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    folders = next(ast.literal_eval(node.value) for node in tree.body
                   if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "FOLDERS" for t in node.targets))
    return {"parbench": "parbench", **{package: folder for folder, package in folders.items()}}


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (packages by their __init__)."""
    found: dict[str, Path] = {}
    for package, folder in package_folders().items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def imports_of(name: str, path: Path, known: dict[str, Path]) -> list[tuple[str, int, bool]]:
    """(imported module, line, at module level) for each import of a package module."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if _is_package(path) else name.rpartition(".")[0]
    top_level = {id(node) for node in tree.body}
    # imports inside `if TYPE_CHECKING:` or try/except at the top are module level too
    for node in tree.body:
        if isinstance(node, (ast.If, ast.Try)):
            top_level.update(id(n) for n in ast.walk(node))
    found: list[tuple[str, int, bool]] = []

    def add(target: str, node: ast.AST) -> None:
        if target in known and target != name:
            found.append((target, node.lineno, id(node) in top_level))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            for alias in node.names:
                # `from pkg import module` imports that module; `from module import name` the module
                target = f"{source}.{alias.name}"
                add(target if target in known else source, node)
    return found


def import_graph(include_lazy: bool = True) -> dict[str, set[str]]:
    known = modules()
    return {name: {target for target, _, top in imports_of(name, path, known) if include_lazy or top}
            for name, path in known.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path a -> ... -> a) per strongly connected component
    with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    cycles = []
    for component in components:
        members = set(component)
        start = min(component)
        # walk inside the component back to the start (breadth first: a shortest cycle)
        paths = {start: [start]}
        frontier = [start]
        cycle = None
        while frontier and cycle is None:
            nxt = []
            for v in frontier:
                for w in sorted(graph[v] & members):
                    if w == start:
                        cycle = paths[v] + [start]
                        break
                    if w not in paths:
                        paths[w] = paths[v] + [w]
                        nxt.append(w)
                if cycle:
                    break
            frontier = nxt
        cycles.append(cycle)
    return cycles


def test_the_module_list_covers_the_package():
    names = modules()
    for expected in ("parbench.cli", "parbench.errors", "parbench.reference.engine", "parbench.harness.wire",
                     "parbench.harness.targets.base", "parbench.scenarios"):
        assert expected in names


def test_no_import_cycle_among_parbench_modules():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_reference_never_imports_the_harness():
    graph = import_graph()
    offenders = sorted((a, b) for a, targets in graph.items() if a.startswith("parbench.reference")
                       for b in targets if b.startswith("parbench.harness"))
    assert not offenders


def test_the_cycle_check_catches_a_cycle():
    # module-level and lazy imports alike
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"x": {"y"}, "y": set()}) == []
    assert find_cycles({"x": {"y"}, "y": {"x"}, "p": {"q"}, "q": {"p"}}) == [["p", "q", "p"], ["x", "y", "x"]]


def test_the_import_scan_sees_lazy_relative_and_from_imports(tmp_path, monkeypatch):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg import b\n")
    (pkg / "b.py").write_text("def f():\n    from .c import thing\n")
    (pkg / "c.py").write_text("import pkg.a\n")
    known = {"pkg": pkg / "__init__.py", **{f"pkg.{n}": pkg / f"{n}.py" for n in "abc"}}
    assert imports_of("pkg.a", known["pkg.a"], known) == [("pkg.b", 1, True)]
    assert imports_of("pkg.b", known["pkg.b"], known) == [("pkg.c", 2, False)]
    graph = {name: {t for t, _, _ in imports_of(name, path, known)} for name, path in known.items()}
    assert find_cycles(graph) == [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]]


def _import_alone(name: str) -> tuple[str, int, str]:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True,
                          timeout=120, env=env, cwd=ROOT.parent)
    return name, proc.returncode, proc.stderr[-1500:]


def test_every_module_imports_alone_in_a_fresh_interpreter():
    names = sorted(set(modules()) - SCRIPTS)
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        results = list(pool.map(_import_alone, names))
    failed = [f"{name}: {err.strip().splitlines()[-1] if err.strip() else rc}" for name, rc, err in results if rc]
    assert not failed, failed


@pytest.mark.parametrize("source, ok", [("import json\n", True), ("raise ImportError('boom')\n", False)])
def test_the_fresh_import_check_catches_a_failing_module(tmp_path, monkeypatch, source, ok):
    (tmp_path / "probe_module_x.py").write_text(source)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    _, rc, err = _import_alone("probe_module_x")
    assert (rc == 0) == ok, err
