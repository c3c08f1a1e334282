"""What every export format builds on: the context a writer and its runners get, a format's table row, the
eager torch runner, the exporters' quiet mode and the dynamic dims. :mod:`torchzoo.export.formats` (the table)
and :mod:`torchzoo.export.pt2` both build on this module."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from torchzoo.export.equivalence import Runner
from torchzoo.export.variants import Heldout
from torchzoo.train.family import Family
from torchzoo.train.spec import ModelSpec


@dataclass
class ExportContext:
    """Everything a writer or runner factory needs about the model being exported."""

    spec: ModelSpec
    family: Family
    model: nn.Module
    record: dict[str, Any]  # train.json
    example: tuple[torch.Tensor, ...]  # real held-out inputs used to trace/export
    #: the held-out test set the int8/fp16 variants are checked on (None: the family has none)
    heldout: Heldout | None = None
    #: model-ready training inputs the static int8 quantizer calibrates on (None: the family has none)
    calibration: tuple[np.ndarray, ...] | None = None


@dataclass(frozen=True)
class ExportFormat:
    name: str
    filename: str
    write: Callable[[ExportContext, Path], dict[str, Any]]
    runners: Callable[[ExportContext, Path], dict[str, Runner]]


def torch_runner(model: nn.Module) -> Runner:
    def run(inputs: tuple[np.ndarray, ...]) -> list[np.ndarray]:
        with torch.no_grad():
            out = model(*(torch.from_numpy(a) for a in inputs))
        outs = out if isinstance(out, tuple | list) else (out,)
        return [o.detach().cpu().numpy() for o in outs]

    return run


@contextlib.contextmanager
def quiet() -> Any:
    """Keep exporter chatter (deprecation warnings, progress prints, torchvision notices) out of sight."""
    names = ("torch.onnx", "torch.export", "torch._export", "torch._dynamo", "onnxscript")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def dynamic_shapes(family: Family) -> dict[str, dict[int, Any]]:
    """torch.export's ``dynamic_shapes`` for the family's inputs: one ``Dim`` per symbolic dim name, shared by
    every input that names it, within the family's ``dim_bounds``."""
    dims: dict[str, Any] = {}
    shapes: dict[str, dict[int, Any]] = {}
    for spec in family.inputs:
        axes = {}
        for axis, size in enumerate(spec.shape):
            if isinstance(size, str):
                if size not in dims:
                    low, high = family.dim_bounds.get(size, (1, None))
                    dims[size] = torch.export.Dim(size, min=low, max=high) if high else torch.export.Dim(size)
                axes[axis] = dims[size]
        shapes[spec.name] = axes
    return shapes
