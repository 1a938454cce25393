"""No import circle in ``ledger/``, ``stages/`` or ``frontends/``: modules import each other in one direction only. Imports
inside functions count too (a circle hidden in a function is still a circle)."""

from __future__ import annotations

import ast
from pathlib import Path

LEDGER = Path(__file__).resolve().parents[2] / "ledger"


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports, anywhere in its body."""
    modules = {path: ".".join(path.relative_to(package.parent).with_suffix("").parts).removesuffix(".__init__")
               for path in package.rglob("*.py")}
    names = set(modules.values())
    graph: dict[str, set[str]] = {name: set() for name in names}
    for path, module in modules.items():
        here = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(here[: len(here) - node.level + 1] + ([node.module] if node.module else []))
                # ``from ledger import projections`` imports the module ledger.projections
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            graph[module].update(t for t in targets if t in names and t not in (module, package.name))
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for other in sorted(graph[module]):
            if state.get(other) == 1:
                found.append([*path[path.index(other):], other])
            elif other not in state:
                visit(other, [*path, other])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return found


def test_no_module_of_the_ledger_imports_one_that_imports_it_back() -> None:
    graph = import_graph(LEDGER)
    assert "ledger.append" in graph["ledger.duckdb_store"]  # the walk sees imports inside functions
    assert graph["ledger.append"] >= {"ledger.projections", "ledger.store"}
    assert cycles(graph) == []


def test_the_walk_finds_a_circle_hidden_in_a_function(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text("def f():\n    from .. import a\n    return a\n")
    (package / "c.py").write_text("import pkg.a\n")
    assert cycles(import_graph(package)) == [["pkg.a", "pkg.sub.b", "pkg.a"]]


def test_no_import_circle_in_the_stages_or_the_frontends() -> None:
    """``from stages.providers import alpaca_parse`` made the package and its provider modules
    import each other; a submodule is imported by its own name (``import stages.providers.x``)."""
    root = LEDGER.parent
    for package in ("stages", "frontends"):
        graph = import_graph(root / package)
        assert cycles(graph) == [], package
