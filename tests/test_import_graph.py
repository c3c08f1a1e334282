"""The runtime's import graph, read from the source: nothing serve_cli or core imports can import torch."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "src" / "torchzoo"
#: the runtime's own rooms (and the torch-free dataset catalog that data-root errors name); everything
#: they import from torchzoo must stay inside this set
RUNTIME = ("torchzoo.serve_cli", "torchzoo.core", "torchzoo.data")
FORBIDDEN = ("torch", "torchvision", "onnx", "onnxscript", "sklearn", "matplotlib", "torchzoo.train", "torchzoo.export")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, module: str) -> set[str]:
    """Every module an ``import`` or ``from ... import`` names anywhere in the file (functions included)."""
    found: set[str] = set()
    package = (module if path.name == "__init__.py" else module.rpartition(".")[0]).split(".")
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def _is(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_runtime_modules_import_nothing_that_imports_torch() -> None:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    runtime = [name for name in files if any(_is(name, r) for r in RUNTIME)]
    assert "torchzoo.serve_cli.predictor" in runtime and "torchzoo.core.artifact" in runtime
    offenders = []
    for name in runtime:
        for imported in _imports(files[name], name):
            if any(_is(imported, bad) for bad in FORBIDDEN):
                offenders.append(f"{name} imports {imported}")
            elif imported in files and imported != "torchzoo" and not any(_is(imported, r) for r in RUNTIME):
                offenders.append(f"{name} imports {imported}, outside the runtime")
    assert not offenders, offenders


def test_the_walk_sees_a_forbidden_import(tmp_path: Path) -> None:
    """The checker itself: a function-level torch import and a relative import are both found."""
    source = tmp_path / "mod.py"
    source.write_text("def f():\n    import torch.nn\n\nfrom . import x\n")
    found = _imports(source, "torchzoo.core.mod")
    assert "torch.nn" in found and "torchzoo.core.x" in found
