"""Imports run only downward, and in no circle: the import graph, read from the code.

Layers, lowest first: the core (manual_bptt's own modules: the cells, the network, the
backward pass, truncation, the inputs, cases, the tolerance policy); the autograd twin
(torch_reference); the tools built on both (manual_bptt.checking, manual_bptt.vanishing,
manual_bptt.testing); the command line (manual_bptt.cli, manual_bptt.__main__); and the
package's front door (manual_bptt/__init__.py, which gathers names for users and which
nothing inside imports). Every import statement counts: at the top, inside functions,
and under ``if TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGES = ("manual_bptt", "torch_reference")
LAYERS = ("core", "twin", "tools", "command line", "front door")


def modules() -> dict[str, Path]:
    """Every module of the two packages by its dotted name."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def layer(name: str) -> int:
    """The layer of a module, by its name (an index into LAYERS)."""
    if name == "manual_bptt":
        return 4
    if name.startswith(("manual_bptt.cli", "manual_bptt.__main__")):
        return 3
    if name.startswith(("manual_bptt.checking", "manual_bptt.vanishing", "manual_bptt.testing")):
        return 2
    if name.startswith("torch_reference"):
        return 1
    return 0


def imports(found: dict[str, Path]) -> dict[str, set[str]]:
    """module → the project's modules it imports, wherever the import statement is."""
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in found.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, *([base] if base else [])])
                # "from manual_bptt import gru" imports the module manual_bptt.gru
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in found else base
                    for alias in node.names
                ]
            for target in targets:
                while target and target not in found:
                    target = target.rpartition(".")[0]  # a name inside a module
                if target and target != name:
                    graph[name].add(target)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

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
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def upward(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{a} ({LAYERS[layer(a)]}) imports {b} ({LAYERS[layer(b)]})"
        for a, targets in graph.items()
        for b in targets
        if layer(b) > layer(a)
    )


def test_no_import_runs_upward() -> None:
    assert upward(imports(modules())) == []


def test_no_imports_run_in_a_circle() -> None:
    assert circles(imports(modules())) == []


def test_the_graph_is_read_from_every_kind_of_import() -> None:
    graph = imports(modules())
    # inside a function: the tools use the twin lazily
    assert "torch_reference" in graph["manual_bptt.checking.styles.project"]
    # a relative import and "from package import module"
    assert "manual_bptt.gru" in graph["manual_bptt.cells"]
    # under TYPE_CHECKING
    assert "manual_bptt.cases" in graph["torch_reference.nn"]


@pytest.mark.parametrize(
    ("edges", "upward_found", "circle_found"),
    [
        ({"manual_bptt.params": {"manual_bptt.checking.verify"}}, True, False),
        ({"manual_bptt.network": {"torch_reference.network"}}, True, False),
        (
            {
                "manual_bptt.params": {"manual_bptt.lstm"},
                "manual_bptt.lstm": {"manual_bptt.params"},
            },
            False,
            True,
        ),
        ({"manual_bptt.cli.verify": {"manual_bptt.checking.verify"}}, False, False),
    ],
)
def test_the_checks_catch_an_upward_edge_and_a_circle(edges, upward_found, circle_found) -> None:
    assert bool(upward(edges)) == upward_found
    assert bool(circles(edges)) == circle_found
