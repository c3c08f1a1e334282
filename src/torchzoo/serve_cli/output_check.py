"""A graph's output is believed only when it is an answer: the expected shape, finite, and for the tasks that
report probabilities, every probability in [0, 1]. Anything else is an :class:`OutputError` (exit 2)."""

from __future__ import annotations

from typing import Any

import numpy as np

from torchzoo.core.errors import OutputError
from torchzoo.core.tasks import get_task
from torchzoo.serve_cli.postprocess import to_scores

#: float rounding allowed above 1 (exp of a float32 log-probability a rounding step above 0)
SLACK = 1e-6


def check_output(raw: Any, samples: int, manifest: dict[str, Any], shown: str) -> np.ndarray:
    """``raw`` (the first output) as a float array of shape ``[samples, width]``, or an OutputError."""
    width = manifest["outputs"][0]["shape"][1]
    if not isinstance(raw, np.ndarray) or raw.dtype.kind not in "fiu":
        raise OutputError(f"{shown}: the graph's output is not a numeric tensor")
    if raw.shape != (samples, width):
        raise OutputError(
            f"{shown}: the graph returned shape {list(raw.shape)}; the manifest says [{samples}, {width}]"
        )
    if not np.all(np.isfinite(raw)):
        raise OutputError(f"{shown}: the graph's output holds NaN or infinity; not an answer")
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
    return raw
