"""The ``.pt2`` format: ``torch.export.export`` + ``torch.export.save``, loaded with ``torch.export.load``.

The module exported is the one the ONNX exporter gets (``ExportContext.onnx_module``: the names model's scan form,
:mod:`torchzoo.train.scan_rnn`), with the same dynamic axes as the ONNX graph (the family's symbolic input
dims and ``dim_bounds``), so the ``.pt2`` program and ``model.onnx`` accept the same shapes. A module with
``nn.GRU`` / ``nn.LSTM`` is exported inside torch's while-loop decompositions
(:func:`torchzoo.train.torch_private.rnn_while_loop_decompositions`): without them ``torch.export``
specializes their sequence axis to the example's length. The runner is the loaded program's ``.module()``,
checked like every other format.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from torchzoo.export.context import ExportContext, dynamic_axes, dynamic_shapes, quiet, torch_runner
from torchzoo.export.equivalence import Runner
from torchzoo.train.torch_private import reset_traces, rnn_while_loop_decompositions


def write_pt2(ctx: ExportContext, target: Path) -> dict[str, Any]:
    if ctx.program is not None:  # a user's own ExportedProgram is the artifact's program, saved as given
        program, module, recurrent = ctx.program, ctx.model, False
    else:
        module = ctx.exported_module
        dims = dynamic_shapes(ctx)
        recurrent = any(isinstance(m, nn.GRU | nn.LSTM) for m in module.modules())
        reset_traces()  # a trace cached by another model's export can pin this one's sequence axis
        try:
            with quiet(), rnn_while_loop_decompositions() if recurrent else contextlib.nullcontext():
                shapes = tuple(dims[t.name] for t in ctx.inputs)
                program = torch.export.export(module, ctx.example, dynamic_shapes=shapes)
        finally:
            reset_traces()
    with quiet():
        torch.export.save(program, str(target))
    return {
        "exporter": "torch.export.export + torch.export.save; load with torch.export.load(path).module()",
        "module": type(module).__name__,
        "decompositions": "GRU/LSTM while-loop (torch.export._patches)" if recurrent else None,
        "wrapper": ctx.onnx_wrapper_reason,
        "dynamic_axes": dynamic_axes(ctx.inputs),
    }


def pt2_runners(ctx: ExportContext, path: Path) -> dict[str, Runner]:
    with quiet():
        module = torch.export.load(str(path)).module()
    return {"torch_export_load": torch_runner(module)}
