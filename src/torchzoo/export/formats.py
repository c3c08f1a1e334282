"""The table of export formats: file name, writer, and the runners the equivalence check uses.

Each writer writes to the path it is given (a temp path; the exporter renames it only after the check
passes) and returns what the manifest should record about how the file was made.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from torchzoo.core import artifact
from torchzoo.core.errors import first_line
from torchzoo.core.session import OPTIMIZATION_LEVELS, create_session
from torchzoo.export.context import (
    ExportContext,
    ExportFormat,
    dynamic_axes,
    dynamic_shapes,
    in_eval,
    quiet,
    torch_runner,
)
from torchzoo.export.equivalence import Runner
from torchzoo.export.pt2 import pt2_runners, write_pt2
from torchzoo.export.variants import write_fp16, write_int8

OPSET = 18


# --- state_dict -------------------------------------------------------------------------------------


def write_state_dict(ctx: ExportContext, target: Path) -> dict[str, Any]:
    torch.save(ctx.model.state_dict(), target)
    return {"how": "torch.save(model.state_dict()); load with torch.load(..., weights_only=True)"}


def state_dict_runners(ctx: ExportContext, path: Path) -> dict[str, Runner]:
    model = ctx.rebuild()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return {"state_dict_eager": torch_runner(in_eval(model))}


# --- TorchScript ------------------------------------------------------------------------------------


def write_torchscript(ctx: ExportContext, target: Path) -> dict[str, Any]:
    method = ctx.torchscript_method
    with quiet():
        if method == "auto":  # script keeps every branch; trace where script cannot (the check proves it)
            try:
                scripted, method = torch.jit.script(ctx.model), "script"
            except Exception as exc:
                scripted, method = torch.jit.trace(ctx.model, ctx.example, strict=False), "trace"
                reason = f"torch.jit.script failed ({first_line(exc)}); traced, and the check proves the trace"
        elif method == "script":
            scripted = torch.jit.script(ctx.model)
        else:
            scripted = torch.jit.trace(ctx.model, ctx.example)
        scripted.save(str(target))
    return {
        "method": method,
        "reason": reason if ctx.torchscript_method == "auto" and method == "trace" else ctx.torchscript_reason,
        "note": "TorchScript is deprecated since torch 2.13 (warning suppressed); still produced on request",
    }


def torchscript_runners(ctx: ExportContext, path: Path) -> dict[str, Runner]:
    with quiet():
        loaded = torch.jit.load(str(path), map_location="cpu")
    return {"torchscript": torch_runner(loaded.eval())}


# --- ONNX -------------------------------------------------------------------------------------------


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
    names = {"input_names": [t.name for t in ctx.inputs], "output_names": [t.name for t in ctx.outputs]}
    if ctx.program is not None:  # a user's ExportedProgram: its graph and dynamic dims travel in it
        program = torch.onnx.export(ctx.program, **names, opset_version=OPSET, external_data=False, verbose=False)
    else:
        program = torch.onnx.export(
            module,
            ctx.example,
            dynamo=True,
            **names,
            dynamic_shapes=dynamic_shapes(ctx),
            opset_version=OPSET,
            external_data=False,
            verbose=False,
        )
    return name_dims(program.model_proto, ctx)


def name_dims(proto: Any, ctx: ExportContext) -> Any:
    """Give the graph's symbolic dims the names of the manifest (an exporter may write its own, ``s43``)."""
    graph = proto.graph
    renamed: dict[str, str] = {}
    for values, specs in ((graph.input, ctx.inputs), (graph.output, ctx.outputs)):
        for value, spec in zip(values, specs, strict=False):
            dims = value.type.tensor_type.shape.dim
            for dim, size in zip(dims, spec.shape, strict=False):
                if isinstance(size, str) and dim.HasField("dim_param"):
                    renamed.setdefault(dim.dim_param, size)
                elif isinstance(size, str) and not dim.HasField("dim_param") and values is graph.output:
                    dim.dim_param = size
    for value in [*graph.input, *graph.output, *graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.HasField("dim_param") and dim.dim_param in renamed:
                dim.dim_param = renamed[dim.dim_param]
    return proto


#: the TorchScript-based exporter is retired: the names model, its last user, exports in scan form (see
#: torchzoo.train.scan_rnn and names.NamesFamily.onnx_exporter_reason for the measurement)
ONNX_EXPORTERS = {"dynamo": ("torch.onnx.export(dynamo=True)", _export_dynamo)}


def write_onnx(ctx: ExportContext, target: Path) -> dict[str, Any]:
    import onnx

    exporter, export = ONNX_EXPORTERS[ctx.onnx_exporter]
    with quiet():
        proto = export(ctx.exported_module, ctx)
    for key, value in metadata_props(ctx.record).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "torchzoo"
    onnx.checker.check_model(proto, full_check=True)
    onnx.save_model(proto, str(target))
    return {
        "exporter": exporter,
        "exporter_reason": ctx.onnx_exporter_reason,
        "opset": OPSET,
        "dynamic_axes": dynamic_axes(ctx.inputs),
        "wrapper": ctx.onnx_wrapper_reason,
        "checker": "onnx.checker.check_model(full_check=True): ok",
    }


def onnx_runners(ctx: ExportContext, path: Path) -> dict[str, Runner]:
    """One onnxruntime CPU session per graph optimization level: each must agree with eager."""
    names = [t.name for t in ctx.inputs]
    runners: dict[str, Runner] = {}
    for level in OPTIMIZATION_LEVELS:
        session = create_session(path, "cpu", level).session

        def run(inputs: tuple[np.ndarray, ...], session: Any = session) -> list[np.ndarray]:
            return session.run(None, dict(zip(names, inputs, strict=True)))

        runners[f"onnxruntime_cpu_opt_{level}"] = run
    return runners


_WRITERS = {
    "state_dict": (write_state_dict, state_dict_runners),
    "torchscript": (write_torchscript, torchscript_runners),
    "pt2": (write_pt2, pt2_runners),
    "onnx": (write_onnx, onnx_runners),
    # the variants' runners are not used: torchzoo.export.variants checks them by task accuracy
    "onnx-int8": (write_int8, onnx_runners),
    "onnx-fp16": (write_fp16, onnx_runners),
}
FORMATS: dict[str, ExportFormat] = {
    name: ExportFormat(name, filename, *_WRITERS[name]) for name, filename in artifact.FORMAT_FILES.items()
}
