"""The layers hold: the import-linter contracts of pyproject.toml, and no import cycle in
engine/ at all (type-only and function-level imports count: grimp sees them all)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import grimp  # installed with import-linter (the test extra): missing, the suite fails

ROOT = Path(__file__).resolve().parent.parent


def test_the_import_contracts_are_kept():
    # lint-imports in a child process from the repository root, so it reads this tree's
    # pyproject.toml and imports this tree's packages.
    linter = Path(sys.executable).with_name("lint-imports")
    command = [str(linter)] if linter.exists() else [sys.executable, "-m", "importlinter.cli"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([*command, "--no-cache"], cwd=ROOT, capture_output=True,
                            text=True, timeout=240, env=env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def _cycles(graph: object, package: str) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    modules = sorted(m for m in graph.modules if m == package or m.startswith(package + "."))
    edges = {m: sorted(i for i in graph.find_modules_directly_imported_by(m)
                       if i == package or i.startswith(package + ".")) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in modules:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, position = work.pop()
            if position == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            targets = edges[node]
            if position < len(targets):
                work.append((node, position + 1))
                target = targets[position]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found


def test_the_engine_has_no_import_cycle():
    sys.path.insert(0, str(ROOT))
    try:
        graph = grimp.build_graph("engine", include_external_packages=False, cache_dir=None)
    finally:
        sys.path.remove(str(ROOT))
    assert graph.find_modules_directly_imported_by("engine.session"), "the graph is empty"
    assert _cycles(graph, "engine") == []


def test_the_cycle_finder_finds_a_cycle():
    class Graph:
        modules = frozenset({"p", "p.a", "p.b", "p.c"})

        @staticmethod
        def find_modules_directly_imported_by(module: str) -> set[str]:
            return {"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}}.get(module, set())

    assert _cycles(Graph(), "p") == [["p.a", "p.b", "p.c"]]
