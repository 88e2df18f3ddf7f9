"""The package's shape (issue 21): no import cycle, small modules and functions, unique names.

Read from the source with ``ast``, never by importing it: an import made inside a
function body counts as an edge like any other, so a lazy import cannot hide a cycle.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "workflow_scripts"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported(path: Path, module: str, known: set[str]) -> set[str]:
    """The package modules ``path`` (module ``module``) imports anywhere, function bodies included.

    A package's ``__init__`` counts as imported with any of its submodules; a module that
    imports its own package's re-exports therefore shows as a cycle.
    """
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name in known}


def import_graph() -> dict[str, set[str]]:
    table = modules()
    return {name: imported(path, name, set(table)) - {name} for name, path in table.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle_hidden_in_a_function_body(tmp_path: Path) -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    source = tmp_path / "m.py"
    source.write_text("def later():\n    from workflow_scripts.config import base\n")
    known = {"workflow_scripts.config.base", "workflow_scripts.config"}
    assert imported(source, "workflow_scripts.m", known) == {
        "workflow_scripts.config",
        "workflow_scripts.config.base",
    }


def test_no_import_cycle() -> None:
    assert cycles(import_graph()) == []


#: Each library package's rank: a module may import its own package or one ranked lower.
LAYERS = {"jobs": 0, "config": 1, "data": 2, "models": 3, "training": 4, "planning": 5, "reporting": 6}
#: The one edge between the upper libraries: the metrics.csv columns the loop writes (torch-free).
ALLOWED_UPWARD = {("reporting", "workflow_scripts.training.run_contract")}


def layer(module: str) -> tuple[str, int]:
    """The package a module belongs to and its rank (entry points, at the top level, rank 7)."""
    parts = module.split(".")
    if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS):
        return parts[1], LAYERS[parts[1]]
    return "entry", len(LAYERS)


def test_imports_point_down_and_no_entry_point_imports_another() -> None:
    graph = import_graph()
    upward = []
    for name, targets in graph.items():
        package, rank = layer(name)
        for target in targets:
            target_package, target_rank = layer(target)
            if target == "workflow_scripts" or (package, target) in ALLOWED_UPWARD:
                continue
            if target_package == "entry" or (target_rank >= rank and target_package != package):
                upward.append(f"{name} -> {target}")
    assert upward == []


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_and_functions_are_small(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_MODULE_LINES, f"{path.name}: {len(lines)} lines"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse("\n".join(lines)))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []


def test_no_two_modules_or_classes_share_a_name() -> None:
    """Two ``metrics.py`` or two ``InputError``s make a reader ask which one is meant."""
    stems = Counter(path.stem for path in PACKAGE.rglob("*.py") if path.name != "__init__.py")
    classes = Counter(
        node.name
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef)
    )
    assert [stem for stem, count in stems.items() if count > 1] == []
    assert [name for name, count in classes.items() if count > 1] == []
