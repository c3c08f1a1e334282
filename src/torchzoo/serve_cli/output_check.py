"""A graph's outputs are believed only when they are an answer: every output numeric, of the manifest's shape
(batch-first with the batch's samples, its fixed sizes, and a dynamic dim that an input also names at that
input's size), finite; and for the tasks that report probabilities, every probability of output 0 in [0, 1].
Anything else is an :class:`OutputError` (exit 2)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from torchzoo.core.errors import OutputError
from torchzoo.core.tasks import get_task
from torchzoo.serve_cli.postprocess import to_scores

#: float rounding allowed above 1 (exp of a float32 log-probability a rounding step above 0)
SLACK = 1e-6


def input_sizes(arrays: Sequence[np.ndarray], manifest: dict[str, Any]) -> dict[str, int]:
    """The size of each dynamic dim name in this run's inputs (the batch dim among them)."""
    sizes: dict[str, int] = {}
    for array, spec in zip(arrays, manifest["inputs"], strict=False):
        for dim, size in zip(spec["shape"], array.shape, strict=False):
            if isinstance(dim, str):
                sizes.setdefault(dim, int(size))
    return sizes


def check_outputs(
    outputs: Sequence[Any], arrays: Sequence[np.ndarray], manifest: dict[str, Any], shown: str
) -> list[np.ndarray]:
    """Every output of a run on ``arrays`` checked against the manifest; returns them."""
    specs = manifest["outputs"]
    if len(outputs) < len(specs):
        raise OutputError(f"{shown}: the graph returned {len(outputs)} outputs; the manifest names {len(specs)}")
    sizes = input_sizes(arrays, manifest)
    sizes[str(specs[0]["shape"][0])] = int(arrays[0].shape[0])  # outputs are batch-first, whatever they call it
    for output, spec in zip(outputs, specs, strict=False):
        _check_tensor(output, spec, sizes, shown)
    if manifest["task"] != "tensor":
        _check_scores(outputs[0], manifest, shown)
    return list(outputs)


def _check_tensor(output: Any, spec: dict[str, Any], sizes: dict[str, int], shown: str) -> None:
    name = spec["name"]
    if not isinstance(output, np.ndarray) or output.dtype.kind not in "fiub":
        raise OutputError(f"{shown}: the graph's output {name!r} is not a numeric tensor")
    expected = [sizes.get(d, d) if isinstance(d, str) else d for d in spec["shape"]]
    if output.ndim != len(expected) or any(
        isinstance(want, int) and got != want for want, got in zip(expected, output.shape, strict=False)
    ):
        raise OutputError(
            f"{shown}: the graph's output {name!r} has shape {list(output.shape)}; the manifest says {expected}"
        )
    if output.dtype.kind == "f" and not np.all(np.isfinite(output)):
        raise OutputError(f"{shown}: the graph's output {name!r} holds NaN or infinity; not an answer")


def _check_scores(raw: np.ndarray, manifest: dict[str, Any], shown: str) -> None:
    """Output 0 of a scored task: its transform finite, and probabilities in [0, 1] (not for regression)."""
    task = manifest["task"]
    post = manifest.get("postprocessing") or {}
    with np.errstate(over="ignore", invalid="ignore"):
        scores = get_task(task).to_units(to_scores(raw, post.get("transform", "identity")), post)
    if not np.all(np.isfinite(scores)):
        raise OutputError(f"{shown}: the output's {post.get('transform', 'identity')} is not finite; not an answer")
    if task != "regression":
        low, high = float(scores.min()), float(scores.max())
        if low < 0.0 or high > 1.0 + SLACK:
            raise OutputError(
                f"{shown}: the graph gives probabilities outside [0, 1] (from {low:.6g} to {high:.6g}); not an answer"
            )
