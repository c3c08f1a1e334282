"""Turn raw model outputs into results a person or program reads: top-k labels, labels over a
threshold, values, or (task ``tensor``) every output as it is."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from torchzoo.core.tasks import get_task


def to_scores(raw: np.ndarray, transform: str) -> np.ndarray:
    raw = raw.astype(np.float64)
    if transform == "exp":
        return np.exp(raw)
    if transform == "softmax":
        shifted = np.exp(raw - raw.max(axis=-1, keepdims=True))
        return shifted / shifted.sum(axis=-1, keepdims=True)
    if transform == "sigmoid":
        return 1.0 / (1.0 + np.exp(-raw))
    return raw


def results(
    raw: np.ndarray, task: str, labels: list[str], post: dict[str, Any], top_k: int = 3, threshold: float = 0.5
) -> list[dict[str, Any]]:
    """One result dict per sample. ``post`` is the manifest's postprocessing: ``transform`` (exp, softmax,
    sigmoid, identity) and, for regression, optional ``scale``/``offset`` back to the target's units."""
    kind = get_task(task)
    scores = kind.to_units(to_scores(raw, post.get("transform", "identity")), post)
    return kind.results(scores, labels, top_k, threshold)


def sample_results(
    outputs: Sequence[np.ndarray], manifest: dict[str, Any], top_k: int = 3, threshold: float = 0.5
) -> list[dict[str, Any]]:
    """One result dict per sample of a run's (checked) outputs: a scored task's results from output 0, or for
    task ``tensor`` ``{"outputs": {name: values}}``, every output's rows as nested lists."""
    if manifest["task"] == "tensor":
        names = [spec["name"] for spec in manifest["outputs"]]
        return [
            {"outputs": {name: out[i].tolist() for name, out in zip(names, outputs, strict=False)}}
            for i in range(len(outputs[0]))
        ]
    post = manifest.get("postprocessing") or {}
    return results(outputs[0], manifest["task"], manifest["labels"], post, top_k=top_k, threshold=threshold)
