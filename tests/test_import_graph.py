"""The layer rules of src/torchzoo and its import cycles, read from the source: every ``import`` and
``from ... import`` statement, function-level ones included, relative ones resolved.

A *room* is a sub-package (``torchzoo.core``, ``torchzoo.train``, ...) or a top-level module (``torchzoo.embed``).
Each rule in :data:`RULES` is its own test, so a failure names the rule and lists every import that breaks it
(module, line, what it imports). :func:`test_no_import_cycles` finds the cycles between modules (Tarjan's
strongly connected components over the module graph).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from support import ROOT

PACKAGE = ROOT / "src" / "torchzoo"
#: the runtime's own rooms (and the torch-free dataset catalog): everything they import from torchzoo stays inside
RUNTIME = ("torchzoo.serve_cli", "torchzoo.core", "torchzoo.data")
#: what the runtime install does not have
TRAINING_STACK = ("torch", "torchvision", "onnx", "onnxscript", "sklearn", "matplotlib")


@dataclass(frozen=True)
class Import:
    """One imported name, absolute: a module (``torch.nn``, ``torchzoo.core.paths``) or a name in one
    (``torchzoo.core.paths.find_dataset``); ``name`` is what ``from X import name`` took (None for ``import X``)."""

    module: str
    target: str
    line: int
    base: str
    name: str | None = None


@dataclass
class Graph:
    """Every module of a package (dotted name -> file) and every import each one makes."""

    modules: dict[str, Path]
    imports: dict[str, list[Import]] = field(default_factory=dict)
    #: names a module binds to another module of the package: module -> {local name: imported module}
    bindings: dict[str, dict[str, str]] = field(default_factory=dict)
    trees: dict[str, ast.Module] = field(default_factory=dict)

    @classmethod
    def read(cls, package: Path) -> Graph:
        modules = {_module_name(path, package): path for path in sorted(package.rglob("*.py"))}
        graph = cls(modules)
        for name, path in modules.items():
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            graph.trees[name] = tree
            graph.imports[name] = list(_imports_in(tree, name, path.name == "__init__.py"))
            graph.bindings[name] = {
                local: module
                for local, target in _bound_names(tree, name, path.name == "__init__.py")
                if (module := graph.resolve(target)) == target
            }
        return graph

    def resolve(self, name: str) -> str | None:
        """The module of the package that ``name`` is or lies in (``torchzoo.core.paths.find_dataset`` ->
        ``torchzoo.core.paths``), or None for a name outside the package."""
        while name:
            if name in self.modules:
                return name
            name = name.rpartition(".")[0]
        return None

    def edges(self) -> dict[str, set[str]]:
        """Module -> the modules of the package it imports (itself and its own parent packages left out:
        Python has imported those before the module runs)."""
        found: dict[str, set[str]] = {m: set() for m in self.modules}
        for module, imports in self.imports.items():
            for imp in imports:
                target = self.resolve(imp.target)
                if target is not None and target != module and not module.startswith(target + "."):
                    found[module].add(target)
        return found


def _module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    base = node.module or ""
    if not node.level:
        return base
    anchor = module.split(".") if is_package else module.split(".")[:-1]
    anchor = anchor[: len(anchor) - (node.level - 1)]
    return ".".join(anchor + ([base] if base else []))


def _imports_in(tree: ast.Module, module: str, is_package: bool) -> Iterator[Import]:
    for node in ast.walk(tree):  # every statement at every depth: functions, methods, if/try blocks
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package)
            yield Import(module, base, node.lineno, base)
            for alias in node.names:
                yield Import(module, f"{base}.{alias.name}", node.lineno, base, alias.name)


def _bound_names(tree: ast.Module, module: str, is_package: bool) -> Iterator[tuple[str, str]]:
    """(local name, the absolute name it is bound to) for every import of the module."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    yield alias.asname, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package)
            for alias in node.names:
                yield alias.asname or alias.name, f"{base}.{alias.name}"


def _is(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _room(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@dataclass(frozen=True)
class Rule:
    """What the modules under ``rooms`` may import: nothing under ``never``; when ``only`` is set, nothing of
    torchzoo outside it; with ``public_only``, no ``_private`` name (module, function, attribute) of another room."""

    says: str
    rooms: tuple[str, ...]
    never: tuple[str, ...] = ()
    only: tuple[str, ...] | None = None
    public_only: bool = False

    def violations(self, graph: Graph) -> list[str]:
        found = []
        for module in sorted(graph.modules):
            if not any(_is(module, room) for room in self.rooms):
                continue
            for imp in graph.imports[module]:
                found += [f"{module}:{imp.line} imports {imp.target}{why}" for why in self._breaks(graph, imp)]
            if self.public_only:
                found += self._private_attributes(graph, module)
        return sorted(set(found))

    def _breaks(self, graph: Graph, imp: Import) -> Iterator[str]:
        if any(_is(imp.target, bad) for bad in self.never):
            yield ""
        target = graph.resolve(imp.target)
        if target is None or imp.module.startswith(target + "."):
            return  # outside the package, or a parent package (imported before the module runs anyway)
        if self.only is not None and not any(_is(target, room) for room in self.only):
            yield f" (outside {', '.join(self.only)})"
        if self.public_only and _room(target) != _room(imp.module):
            inside = imp.target.split(".")[2:]  # the names below the room: sub-modules, then the imported name
            if any(_private(part) for part in inside):
                yield f" (a private name of {_room(target)})"

    def _private_attributes(self, graph: Graph, module: str) -> list[str]:
        """``formats._write`` where ``formats`` is a module of another room bound by an import."""
        other = {local: bound for local, bound in graph.bindings[module].items() if _room(bound) != _room(module)}
        found = []
        for node in ast.walk(graph.trees[module]):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in other:
                bound = other[node.value.id]
                if _private(node.attr):
                    found.append(f"{module}:{node.lineno} uses {bound}.{node.attr} (a private name of {_room(bound)})")
        return found


RULES = (
    Rule("core imports nothing else of torchzoo", ("torchzoo.core",), only=("torchzoo.core",)),
    Rule("train never imports export", ("torchzoo.train",), never=("torchzoo.export",)),
    Rule(
        "serve_cli (the runtime) never imports torch, train, export or bench",
        ("torchzoo.serve_cli",),
        never=("torch", "torchzoo.train", "torchzoo.export", "torchzoo.bench"),
    ),
    Rule(
        "the runtime's rooms import no training stack and nothing of torchzoo outside serve_cli, core and data",
        RUNTIME,
        never=(*TRAINING_STACK, "torchzoo.train", "torchzoo.export"),
        only=RUNTIME,
    ),
    Rule("bench uses only public names of other rooms", ("torchzoo.bench",), public_only=True),
)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles: every strongly connected component of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
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
                found.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(edges) + 100))
    try:
        for v in sorted(edges):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(limit)
    return sorted(found)


@pytest.fixture(scope="module")
def graph() -> Graph:
    return Graph.read(PACKAGE)


def test_the_walk_reads_every_module_and_its_imports(graph: Graph) -> None:
    rooms = {_room(m) for m in graph.modules}
    assert {f"torchzoo.{r}" for r in ("core", "data", "train", "export", "serve_cli", "bench", "cli")} <= rooms
    assert {"torchzoo", "torchzoo.core", "torchzoo.serve_cli.predictor", "torchzoo.core.artifact"} <= set(graph.modules)
    edges = graph.edges()
    assert "torchzoo.core.artifact" in edges["torchzoo.serve_cli.predictor"]
    runtime = [m for m in graph.modules if any(_is(m, room) for room in RUNTIME)]
    assert "torchzoo.serve_cli.predictor" in runtime and "torchzoo.core.artifact" in runtime


@pytest.mark.parametrize("rule", RULES, ids=[r.says for r in RULES])
def test_layer_rule(graph: Graph, rule: Rule) -> None:
    assert graph.modules and not rule.violations(graph), f"{rule.says}:\n" + "\n".join(rule.violations(graph))


def test_no_import_cycles(graph: Graph) -> None:
    found = cycles(graph.edges())
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


# --- the checker itself, on a package written here -------------------------------------------------------


def _package(root: Path, files: dict[str, str]) -> Path:
    for name, source in files.items():
        path = root / "torchzoo" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return root / "torchzoo"


def test_the_walk_sees_a_forbidden_import(tmp_path: Path) -> None:
    """A function-level torch import and a relative import are both found."""
    package = _package(tmp_path, {"__init__.py": "", "core/__init__.py": "", "core/mod.py": "", "core/x.py": ""})
    (package / "core" / "mod.py").write_text("def f():\n    import torch.nn\n\nfrom . import x\n")
    graph = Graph.read(package)
    found = {imp.target for imp in graph.imports["torchzoo.core.mod"]}
    assert "torch.nn" in found and "torchzoo.core.x" in found
    runtime = next(r for r in RULES if r.rooms == RUNTIME)
    assert runtime.violations(graph) == ["torchzoo.core.mod:2 imports torch.nn"]


def test_every_rule_catches_what_it_forbids(tmp_path: Path) -> None:
    package = _package(
        tmp_path,
        {
            "__init__.py": "",
            "core/__init__.py": "",
            "core/paths.py": "def f():\n    from torchzoo.data.catalog import SHIPPED\n",
            "data/__init__.py": "",
            "data/catalog.py": "SHIPPED = 1\n",
            "train/__init__.py": "",
            "train/names.py": "from ..export import scan_rnn\n",
            "export/__init__.py": "",
            "export/scan_rnn.py": "def _private(): ...\ndef public(): ...\n",
            "serve_cli/__init__.py": "",
            "serve_cli/batch.py": "import torch\nfrom torchzoo.bench import measure\n",
            "bench/__init__.py": "",
            "bench/measure.py": (
                "from torchzoo.export.scan_rnn import _private, public\n"
                "from torchzoo.export import scan_rnn\n"
                "scan_rnn._private()\nscan_rnn.public()\n"
            ),
            "bench/peers.py": "from torchzoo.bench import measure\nmeasure._peer = 1\n",  # same room: allowed
        },
    )
    graph = Graph.read(package)
    found = {rule.says: rule.violations(graph) for rule in RULES}
    assert found["core imports nothing else of torchzoo"] == [
        "torchzoo.core.paths:2 imports torchzoo.data.catalog (outside torchzoo.core)",
        "torchzoo.core.paths:2 imports torchzoo.data.catalog.SHIPPED (outside torchzoo.core)",
    ]
    assert found["train never imports export"] == [
        "torchzoo.train.names:1 imports torchzoo.export",
        "torchzoo.train.names:1 imports torchzoo.export.scan_rnn",
    ]
    serve = next(r for r in RULES if r.says.startswith("serve_cli"))
    assert found[serve.says] == [
        "torchzoo.serve_cli.batch:1 imports torch",
        "torchzoo.serve_cli.batch:2 imports torchzoo.bench",
        "torchzoo.serve_cli.batch:2 imports torchzoo.bench.measure",
    ]
    assert found["bench uses only public names of other rooms"] == [
        "torchzoo.bench.measure:1 imports torchzoo.export.scan_rnn._private (a private name of torchzoo.export)",
        "torchzoo.bench.measure:3 uses torchzoo.export.scan_rnn._private (a private name of torchzoo.export)",
    ]


def test_cycles_are_found_through_function_level_imports(tmp_path: Path) -> None:
    package = _package(
        tmp_path,
        {
            "__init__.py": "",
            "export/__init__.py": "",
            "export/formats.py": "from torchzoo.export.pt2 import write\n",
            "export/pt2.py": "def write():\n    from torchzoo.export import formats\n",
            "export/alone.py": "from torchzoo.export import formats\n",  # imports into the cycle, not part of it
            "core/__init__.py": "from torchzoo.core import errors\n",  # a package and its own module: no cycle
            "core/errors.py": "from torchzoo import core\n",
        },
    )
    assert cycles(Graph.read(package).edges()) == [["torchzoo.export.formats", "torchzoo.export.pt2"]]
