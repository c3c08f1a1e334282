"""The table of export formats: file name, writer, and the runners the equivalence check uses.

Each writer writes to the path it is given (a temp path; the exporter renames it only after the check
passes) and returns what the manifest should record about how the file was made.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from torchzoo.core import artifact
from torchzoo.core.session import OPTIMIZATION_LEVELS, create_session
from torchzoo.export.equivalence import Runner
from torchzoo.export.variants import Heldout, write_fp16, write_int8
from torchzoo.train.family import Family
from torchzoo.train.spec import ModelSpec

OPSET = 18


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


# --- state_dict -------------------------------------------------------------------------------------


def write_state_dict(ctx: ExportContext, target: Path) -> dict[str, Any]:
    torch.save(ctx.model.state_dict(), target)
    return {"how": "torch.save(model.state_dict()); load with torch.load(..., weights_only=True)"}


def state_dict_runners(ctx: ExportContext, path: Path) -> dict[str, Runner]:
    model = ctx.family.build_model(ctx.spec)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return {"state_dict_eager": torch_runner(model.eval())}


# --- TorchScript ------------------------------------------------------------------------------------


def write_torchscript(ctx: ExportContext, target: Path) -> dict[str, Any]:
    with quiet():
        if ctx.family.torchscript_method == "script":
            scripted = torch.jit.script(ctx.model)
        else:
            scripted = torch.jit.trace(ctx.model, ctx.example)
        scripted.save(str(target))
    return {
        "method": ctx.family.torchscript_method,
        "reason": ctx.family.torchscript_reason,
        "note": "TorchScript is deprecated since torch 2.13 (warning suppressed); still produced on request",
    }


def torchscript_runners(ctx: ExportContext, path: Path) -> dict[str, Runner]:
    with quiet():
        loaded = torch.jit.load(str(path), map_location="cpu")
    return {"torchscript": torch_runner(loaded.eval())}


# --- ONNX -------------------------------------------------------------------------------------------


def _dynamic_shapes(family: Family) -> dict[str, dict[int, Any]]:
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


def metadata_props(record: dict[str, Any]) -> dict[str, str]:
    """The manifest's essentials, stored in the graph itself so a bare model.onnx describes itself."""
    return {
        "torchzoo.model": record["model"],
        "torchzoo.task": record["task"],
        "torchzoo.labels": json.dumps(record["labels"]),
        "torchzoo.preprocessing": json.dumps(record["preprocessing"]),
        "torchzoo.postprocessing": json.dumps(record["postprocessing"]),
        "torchzoo.inputs": json.dumps(record["inputs"]),
        "torchzoo.outputs": json.dumps(record["outputs"]),
        "torchzoo.dataset": json.dumps(record["dataset"]),
        "torchzoo.versions": json.dumps(export_versions()),
    }


def export_versions() -> dict[str, str]:
    import onnx

    versions = {"torch": torch.__version__, "onnx": onnx.__version__}
    with contextlib.suppress(ImportError):
        import onnxruntime

        versions["onnxruntime"] = onnxruntime.__version__
    with contextlib.suppress(ImportError):
        import onnxscript

        versions["onnxscript"] = onnxscript.__version__
    return versions


def _export_dynamo(module: nn.Module, ctx: ExportContext) -> Any:
    family = ctx.family
    program = torch.onnx.export(
        module,
        ctx.example,
        dynamo=True,
        input_names=[t.name for t in family.inputs],
        output_names=[t.name for t in family.outputs],
        dynamic_shapes=_dynamic_shapes(family),
        opset_version=OPSET,
        external_data=False,
        verbose=False,
    )
    return program.model_proto


#: the TorchScript-based exporter is retired: the names model, its last user, exports in scan form (see
#: torchzoo.export.scan_rnn and names.NamesFamily.onnx_exporter_reason for the measurement)
ONNX_EXPORTERS = {"dynamo": ("torch.onnx.export(dynamo=True)", _export_dynamo)}


def write_onnx(ctx: ExportContext, target: Path) -> dict[str, Any]:
    import onnx

    family = ctx.family
    module = family.onnx_module(ctx.model).eval()
    exporter, export = ONNX_EXPORTERS[family.onnx_exporter]
    with quiet():
        proto = export(module, ctx)
    for key, value in metadata_props(ctx.record).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "torchzoo"
    onnx.checker.check_model(proto, full_check=True)
    onnx.save_model(proto, str(target))
    return {
        "exporter": exporter,
        "exporter_reason": family.onnx_exporter_reason,
        "opset": OPSET,
        "dynamic_axes": {t.name: [s for s in t.shape if isinstance(s, str)] for t in family.inputs},
        "wrapper": family.onnx_wrapper_reason,
        "checker": "onnx.checker.check_model(full_check=True): ok",
    }


def onnx_runners(ctx: ExportContext, path: Path) -> dict[str, Runner]:
    """One onnxruntime CPU session per graph optimization level: each must agree with eager."""
    names = [t.name for t in ctx.family.inputs]
    runners: dict[str, Runner] = {}
    for level in OPTIMIZATION_LEVELS:
        session = create_session(path, "cpu", level).session

        def run(inputs: tuple[np.ndarray, ...], session: Any = session) -> list[np.ndarray]:
            return session.run(None, dict(zip(names, inputs, strict=True)))

        runners[f"onnxruntime_cpu_opt_{level}"] = run
    return runners


def _pt2(name: str) -> Callable[[ExportContext, Path], Any]:
    """A function of torchzoo.export.pt2 (which builds on this module), imported when first called."""

    def call(ctx: ExportContext, path: Path) -> Any:
        from torchzoo.export import pt2

        return getattr(pt2, name)(ctx, path)

    return call


_WRITERS = {
    "state_dict": (write_state_dict, state_dict_runners),
    "torchscript": (write_torchscript, torchscript_runners),
    "pt2": (_pt2("write_pt2"), _pt2("pt2_runners")),
    "onnx": (write_onnx, onnx_runners),
    # the variants' runners are not used: torchzoo.export.variants checks them by task accuracy
    "onnx-int8": (write_int8, onnx_runners),
    "onnx-fp16": (write_fp16, onnx_runners),
}
FORMATS: dict[str, ExportFormat] = {
    name: ExportFormat(name, filename, *_WRITERS[name]) for name, filename in artifact.FORMAT_FILES.items()
}
