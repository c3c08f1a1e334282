"""What every export format builds on: the context a writer and its runners get, a format's table row, the
eager torch runner, the exporters' quiet mode and the dynamic dims. :mod:`torchzoo.export.formats` (the table)
and :mod:`torchzoo.export.pt2` both build on this module."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from torchzoo.core.tensor_spec import TensorSpec
from torchzoo.export.equivalence import Runner
from torchzoo.export.variants import Heldout


@dataclass
class ExportContext:
    """What is exported and how: the one description every writer, runner and check uses. A zoo model's is
    built from its family (:func:`torchzoo.export.zoo.zoo_context`), a user's own model's from the module and
    what the user declared (:func:`torchzoo.export.package.package`)."""

    name: str
    task: str
    model: nn.Module  # the eager reference, in eval mode
    record: dict[str, Any]  # what the manifest says of the model (a zoo model's train.json)
    example: tuple[torch.Tensor, ...]  # real inputs used to trace/export
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    #: an untrained module of the same architecture, for the state_dict check to load the saved weights into
    rebuild: Callable[[], nn.Module]
    #: bounds of symbolic dims, e.g. {"seq": (1, 64)}; unbounded otherwise
    dim_bounds: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: float32 outputs are checked at 1e-5 abs unless a tolerance is justified
    tolerance: float = 1e-5
    tolerance_reason: str = "float32 outputs"
    #: "script", "trace" (only where the check proves it), or "auto" (script, else trace; a module that
    #: neither makes is refused TorchScript, with the reason)
    torchscript_method: str = "script"
    torchscript_reason: str = "torch.jit.script keeps every branch and loop of forward"
    #: the module handed to the pt2 and ONNX exporters (a zoo family may wrap it, e.g. to bound a loop)
    onnx_module: nn.Module | None = None
    onnx_exporter: str = "dynamo"
    onnx_exporter_reason: str = "torch.onnx.export's default exporter (torch.export-based)"
    onnx_wrapper_reason: str | None = None
    #: the user's own ExportedProgram (``torchzoo export PATH.pt2``): saved as model.pt2 and exported to ONNX as is
    program: Any = None
    #: formats whose exporter may fail without failing the export: the format is refused, with the reason
    refusable: frozenset[str] = frozenset()
    #: the held-out test set the int8/fp16 variants are checked on (None: none given)
    heldout: Heldout | None = None
    #: model-ready training inputs the static int8 quantizer calibrates on (None: dynamic int8)
    calibration: tuple[np.ndarray, ...] | None = None

    @property
    def exported_module(self) -> nn.Module:
        return in_eval(self.onnx_module if self.onnx_module is not None else self.model)


@dataclass(frozen=True)
class ExportFormat:
    name: str
    filename: str
    write: Callable[[ExportContext, Path], dict[str, Any]]
    runners: Callable[[ExportContext, Path], dict[str, Runner]]


def in_eval(module: nn.Module) -> nn.Module:
    """``module`` in eval mode; an ExportedProgram's module is already fixed in the mode it was exported in (and
    refuses ``eval()``)."""
    try:
        return module.eval()
    except NotImplementedError:
        return module


def flatten_outputs(out: Any) -> list[torch.Tensor]:
    """A forward's outputs as a list: a tensor, a tuple/list of tensors, or a dict of them (in its order)."""
    items = list(out.values()) if isinstance(out, dict) else list(out) if isinstance(out, tuple | list) else [out]
    if not all(isinstance(o, torch.Tensor) for o in items):
        from torchzoo.core.errors import UserInputError

        raise UserInputError("the model's outputs must be a tensor, or a tuple, list or dict of tensors")
    return items


def torch_runner(model: nn.Module) -> Runner:
    def run(inputs: tuple[np.ndarray, ...]) -> list[np.ndarray]:
        with torch.no_grad():
            out = model(*(torch.from_numpy(a) for a in inputs))
        return [o.detach().cpu().numpy() for o in flatten_outputs(out)]

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


def dynamic_shapes(ctx: ExportContext) -> dict[str, dict[int, Any]]:
    """torch.export's ``dynamic_shapes`` for the inputs: one ``Dim`` per symbolic dim name, shared by every
    input that names it, within ``dim_bounds``."""
    dims: dict[str, Any] = {}
    shapes: dict[str, dict[int, Any]] = {}
    for spec in ctx.inputs:
        axes = {}
        for axis, size in enumerate(spec.shape):
            if isinstance(size, str):
                if size not in dims:
                    low, high = ctx.dim_bounds.get(size, (1, None))
                    dims[size] = torch.export.Dim(size, min=low, max=high) if high else torch.export.Dim(size)
                axes[axis] = dims[size]
        shapes[spec.name] = axes
    return shapes


def dynamic_axes(specs: tuple[TensorSpec, ...]) -> dict[str, list[str]]:
    """What the manifest's format entries record: each tensor's symbolic dims."""
    return {t.name: [s for s in t.shape if isinstance(s, str)] for t in specs}
