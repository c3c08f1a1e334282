"""The registry: every model of the zoo, collected from the family modules that declare them.

A family module of ``torchzoo.train`` declares its rows as a module-level ``MODELS`` tuple of
:class:`~torchzoo.train.spec.ModelSpec`; adding a family means adding one module. Collecting the rows
imports the family modules (and so torch), once, on first use.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil

from torchzoo.core.errors import UserInputError
from torchzoo.core.text_codec import did_you_mean
from torchzoo.train.spec import ModelSpec


@functools.cache
def models() -> tuple[ModelSpec, ...]:
    """Every declared model, in module order then declaration order; names are unique."""
    import torchzoo.train as package

    rows: list[ModelSpec] = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        rows += getattr(module, "MODELS", ())
    names = [row.name for row in rows]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise RuntimeError(f"models declared twice: {', '.join(duplicates)}")
    return tuple(rows)


def names() -> list[str]:
    return [spec.name for spec in models()]


def get(name: str) -> ModelSpec:
    """The spec for ``name``, or a one-line error suggesting the closest known name."""
    by_name = {spec.name: spec for spec in models()}
    if name in by_name:
        return by_name[name]
    raise UserInputError(f"unknown model '{name}'{did_you_mean(name, list(by_name), list_known=True)}")


def resolve(name: str) -> list[ModelSpec]:
    """``all`` -> every model; otherwise the one named."""
    return list(models()) if name == "all" else [get(name)]
