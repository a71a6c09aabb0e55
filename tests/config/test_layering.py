"""The layering of the apps (docs/adr/0001-app-split.md), checked on the source.

- billing reaches neither payeasy nor reconciliation: no import (module level or in a function), no
  ``apps.get_model``, no ``importlib``, no SQL naming their tables;
- nothing imports reconciliation;
- the Pay-easy codec is a leaf: it imports nothing of the project but pure text modules that import
  nothing themselves (``billing.kana``, the 全銀 character set both apps share);
- the import graph of the product's modules has no cycle;
- no module is over 600 lines, and no private name (``_x``) is imported from another module.
"""

from __future__ import annotations

import ast
import pathlib
import re
from collections.abc import Iterator

ROOT = pathlib.Path(__file__).resolve().parents[2]
APPS = ("billing", "payeasy", "reconciliation", "config")
MAX_LINES = 600


def _sources() -> dict[str, pathlib.Path]:
    modules: dict[str, pathlib.Path] = {}
    for app in APPS:
        for path in sorted(ROOT.joinpath(app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path
    return modules


MODULES = _sources()


def _imports(name: str, path: pathlib.Path) -> Iterator[tuple[str, int, tuple[str, ...]]]:
    """(imported module, line, names) for every import statement, module level or not."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, ()
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            yield base, node.lineno, tuple(alias.name for alias in node.names)


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for module, _line, names in _imports(name, path):
            targets = [_resolve(f"{module}.{n}") for n in names] or [_resolve(module)]
            if names and not any(t and t.startswith(f"{module}.") for t in targets):
                targets = [_resolve(module)]
            for target in targets:
                if target and target != name:
                    graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def test_the_import_graph_has_no_cycle() -> None:
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_billing_reaches_neither_payeasy_nor_reconciliation() -> None:
    from django.apps import apps

    tables = sorted(
        model._meta.db_table
        for label in ("payeasy", "reconciliation")
        for model in apps.get_app_config(label).get_models(include_auto_created=True)
    )
    assert "payeasy_ledgerentry" in tables
    other_tables = re.compile(r"\b(" + "|".join(tables) + r")\b")
    found = []
    for name, path in MODULES.items():
        if not name.startswith("billing"):
            continue
        for module, line, _names in _imports(name, path):
            if module.split(".")[0] in {"payeasy", "reconciliation"} or module == "importlib":
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "get_model":
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} apps.get_model")
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and other_tables.search(node.value)
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} names another app's table")
    assert found == []


def test_nothing_imports_reconciliation() -> None:
    graph = _graph()
    assert (
        sorted(
            name
            for name, targets in graph.items()
            if not name.startswith("reconciliation") and any(t.startswith("reconciliation") for t in targets)
        )
        == []
    )


def test_the_codec_is_a_leaf() -> None:
    graph = _graph()
    codec = {name for name in MODULES if name == "payeasy.codec" or name.startswith("payeasy.codec.")}
    assert codec
    outside = {(c, t) for c in codec for t in graph[c] if t not in codec}
    assert sorted((c, t) for c, t in outside if graph[t]) == []  # only pure modules (no imports of ours)


def test_no_module_is_over_600_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): count
        for path in MODULES.values()
        if (count := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_no_private_name_crosses_modules() -> None:
    found = []
    for name, path in MODULES.items():
        for module, line, names in _imports(name, path):
            if module.split(".")[0] not in APPS:
                continue
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private:
                found.append(f"{path.relative_to(ROOT)}:{line} {module}.{','.join(private)}")
    assert found == []
