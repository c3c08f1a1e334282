"""The zoo's models through the one export path: a trained zoo model is a module, example inputs and the
metadata its family supplies (:func:`zoo_context`); export and verify are calls of
:mod:`torchzoo.export.exporter`. ``verify`` rebuilds the eager model from ``model.pt`` (weights_only=True), so
it proves the checkpoint as well as every exported file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from torchzoo.export.context import ExportContext
from torchzoo.export.equivalence import FormatReport
from torchzoo.export.exporter import (
    CHECK_SEED,
    ExportOutcome,
    export_artifact,
    read_checked,
    reference_outputs,
    verify_artifact,
)
from torchzoo.export.variants import VARIANTS, bounded_heldout
from torchzoo.train.family import CheckCase
from torchzoo.train.runner import load_trained
from torchzoo.train.spec import ModelSpec

REFERENCE = "torch eager, float CPU, rebuilt from model.pt (weights_only=True)"


def zoo_context(
    spec: ModelSpec, model: torch.nn.Module, record: dict[str, Any], cases: list[CheckCase]
) -> ExportContext:
    """What the family says of its model, as the export path's context."""
    family = spec.family
    heldout = [c for c in cases if c.kind == "heldout"]
    example = max(heldout, key=lambda c: c.inputs[0].shape[0])
    return ExportContext(
        name=spec.name,
        task=spec.task,
        model=model,
        record=record,
        example=tuple(torch.from_numpy(a) for a in example.inputs),
        inputs=family.inputs,
        outputs=family.outputs,
        rebuild=lambda: family.build_model(spec),
        dim_bounds=family.dim_bounds,
        tolerance=family.tolerance,
        tolerance_reason=family.tolerance_reason,
        torchscript_method=family.torchscript_method,
        torchscript_reason=family.torchscript_reason,
        onnx_module=family.onnx_module(model),
        onnx_exporter=family.onnx_exporter,
        onnx_exporter_reason=family.onnx_exporter_reason,
        onnx_wrapper_reason=family.onnx_wrapper_reason,
    )


def export_model(
    spec: ModelSpec, formats: list[str], artifacts_dir: Path, data_dir: Path | None = None
) -> ExportOutcome:
    model, record = load_trained(spec, artifacts_dir)
    family = spec.family
    data = family.load_data(spec, data_dir, record["seed"])
    cases = family.check_cases(data, np.random.default_rng(CHECK_SEED))
    ctx = zoo_context(spec, model, {**record, "origin": {"kind": "zoo"}}, cases)
    if any(name in VARIANTS for name in formats) or "onnx" in formats:
        ctx.heldout = bounded_heldout(family.heldout_set(data), CHECK_SEED)
        ctx.calibration = family.calibration_set(data)
    return export_artifact(ctx, cases, formats, artifacts_dir, keep_previous=True, reference=REFERENCE)


def verify_model(spec: ModelSpec, artifacts_dir: Path) -> list[FormatReport]:
    """Re-hash every file, rebuild the eager model from ``model.pt`` and re-run every format's check on the
    saved check inputs. Needs nothing but the artifact directory (no dataset)."""
    directory = artifacts_dir / spec.name
    manifest, _, cases, _ = read_checked(directory)
    model, record = load_trained(spec, artifacts_dir)
    ctx = zoo_context(spec, model, record, cases)
    return verify_artifact(ctx, directory, manifest, cases, reference_outputs(ctx, cases))
