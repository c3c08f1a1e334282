"""The one table that names every model; it drives train, export, list and predict. Torch-free.

A row names its family module (``torchzoo.train.<family>``), imported only when the model is used,
so listing or resolving names never pays for importing torch.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from torchzoo.errors import UserInputError

if TYPE_CHECKING:
    from torchzoo.train.family import Family


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str
    task: str  # classification | binary | multilabel | regression
    dataset: str
    summary: str
    options: dict[str, Any] = field(default_factory=dict)

    def load_family(self) -> Family:
        module = importlib.import_module(f"torchzoo.train.{self.family}")
        return module.FAMILY


MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="names",
        family="names",
        task="classification",
        dataset="names (18 languages, 20,068 surnames)",
        summary="char-RNN from scratch: i2h/i2o over one-hot letters + 128-wide hidden, LogSoftmax",
    ),
)

_BY_NAME = {spec.name: spec for spec in MODELS}


def names() -> list[str]:
    return [spec.name for spec in MODELS]


def get(name: str) -> ModelSpec:
    """The spec for ``name``, or a one-line error suggesting the closest known name."""
    if name in _BY_NAME:
        return _BY_NAME[name]
    close = difflib.get_close_matches(name, _BY_NAME, n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else f"; known models: {', '.join(_BY_NAME)}"
    raise UserInputError(f"unknown model '{name}'{hint}")


def resolve(name: str) -> list[ModelSpec]:
    """``all`` -> every model; otherwise the one named."""
    return list(MODELS) if name == "all" else [get(name)]
