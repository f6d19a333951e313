"""The import rule: the folders are the pipeline, and imports run one way.

    errors < files < spec < calculus < check < render < (qa, export) < api < cli

A module may import only from its own package or from packages below it
(imports under `if TYPE_CHECKING:` are type hints and excepted); qa and
export never import each other; and no module takes part in an import
cycle, whether the import sits at module level or inside a function.  The
walk reads the source with `ast`, so nothing of derive is executed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "derive"
#: Each layer of the rule, lowest first; names in one layer may not import each other
#: unless they are the same package.
LAYERS = [{"errors"}, {"files"}, {"spec"}, {"calculus"}, {"check"}, {"render"},
          {"qa", "export"}, {"api"}, {"cli"}, {"__init__", "__main__"}]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _unit(module: str) -> str:
    """The rule's unit of a module: its subpackage, or the root module's own name."""
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    if node.level == 0:
        base = node.module or ""
        if not base.startswith("derive"):
            return []
        return [base]
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    target = ".".join(base + ([node.module] if node.module else []))
    if node.module:
        return [target]
    return [f"{target}.{alias.name}" for alias in node.names]


def imports_of(path: Path, source: str | None = None) -> list[tuple[str, int]]:
    """(imported derive module, line) for every import outside `if TYPE_CHECKING:`."""
    tree = ast.parse(source if source is not None else path.read_text())
    module, is_package = _module_name(path), path.name == "__init__.py"
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, ast.ImportFrom):
                found.extend((t, child.lineno) for t in _resolve(module, is_package, child))
            elif isinstance(child, ast.Import):
                found.extend((a.name, child.lineno) for a in child.names if a.name.startswith("derive"))
            visit(child)

    visit(tree)
    return found


def _known(name: str, modules: set[str]) -> str:
    """The module a dotted import name means (`from .x import y` may name a submodule y)."""
    while name not in modules and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _graph(sources: dict[Path, str] | None = None) -> dict[str, set[str]]:
    paths = sorted(ROOT.rglob("*.py"))
    sources = sources or {}
    modules = {_module_name(p) for p in paths}
    graph = {}
    for p in paths:
        graph[_module_name(p)] = {_known(t, modules) for t, _ in imports_of(p, sources.get(p))}
    return graph


def violations(sources: dict[Path, str] | None = None) -> list[str]:
    """Every import that breaks the layer rule, as 'importer -> imported' lines."""
    bad = []
    for module, targets in _graph(sources).items():
        for target in sorted(targets):
            a, b = _unit(module), _unit(target)
            if a == b:
                continue
            if RANK[b] >= RANK[a]:
                bad.append(f"{module} -> {target}")
    return bad


def cycles(sources: dict[Path, str] | None = None) -> list[list[str]]:
    """Strongly connected groups of more than one module (or a module importing itself)."""
    graph = _graph(sources)
    index, low, stack, on, out = {}, {}, [], set(), []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1 or v in graph[v]:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def test_every_package_has_a_rank():
    units = {_unit(m) for m in _graph()}
    assert units <= set(RANK), units - set(RANK)


def test_imports_follow_the_layer_rule():
    assert violations() == []


def test_no_import_cycles():
    assert cycles() == []


@pytest.mark.parametrize("importer, line", [
    ("spec/network.py", "from ..calculus.model import SymbolicModel"),
    ("calculus/backprop.py", "from ..render.printing import to_latex"),
    ("qa/claim.py", "from ..export.codegen import generate"),
    ("export/codegen.py", "from ..qa import claim"),
    ("render/report.py", "def f():\n    from ..api import Network\n"),
])
def test_layer_rule_catches_a_forbidden_import(importer, line):
    path = ROOT / importer
    broken = {path: path.read_text() + "\n" + line + "\n"}
    added = set(violations(broken)) - set(violations())
    assert len(added) == 1, f"{importer}: {line!r} should break the rule"


def test_type_checking_imports_are_excepted():
    path = ROOT / "render" / "report.py"
    hinted = {path: path.read_text() + "\nif TYPE_CHECKING:\n    from ..api import Network\n"}
    assert violations(hinted) == violations()


def test_cycle_check_catches_a_cycle():
    path = ROOT / "spec" / "registry.py"
    looped = {path: path.read_text() + "\ndef f():\n    from .loading import make_spec\n"}
    assert len(cycles(looped)) == len(cycles()) + 1


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["grad", "--bogus"]])
def test_cli_help_imports_no_sympy_or_numpy(argv):
    """`derive --help`, `--version` and usage errors answer before any heavy import."""
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "derive", *argv],
                         capture_output=True, text=True, timeout=60)
    imported = {line.split("|")[-1].strip() for line in run.stderr.splitlines()
                if line.startswith("import time:")}
    assert imported and "derive.cli" in imported
    assert not {m for m in imported if m.split(".")[0] in ("sympy", "numpy")}
