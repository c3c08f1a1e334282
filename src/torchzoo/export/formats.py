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
from torchzoo.core.session import OPTIMIZATION_LEVELS, create_session
from torchzoo.export.context import ExportContext, ExportFormat, dynamic_shapes, quiet, torch_runner
from torchzoo.export.equivalence import Runner
from torchzoo.export.pt2 import pt2_runners, write_pt2
from torchzoo.export.variants import write_fp16, write_int8

OPSET = 18


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
        dynamic_shapes=dynamic_shapes(family),
        opset_version=OPSET,
        external_data=False,
        verbose=False,
    )
    return program.model_proto


#: the TorchScript-based exporter is retired: the names model, its last user, exports in scan form (see
#: torchzoo.train.scan_rnn and names.NamesFamily.onnx_exporter_reason for the measurement)
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
