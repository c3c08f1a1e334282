"""Turn raw model outputs into results a person or program reads: top-k labels, labels over a
threshold, or values."""

from __future__ import annotations

from typing import Any

import numpy as np


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
    scores = to_scores(raw, post.get("transform", "identity"))
    if task == "regression":
        scores = scores * float(post.get("scale", 1.0)) + float(post.get("offset", 0.0))
    out: list[dict[str, Any]] = []
    for row in scores:
        if task == "classification":
            order = np.argsort(-row)[: max(1, top_k)]
            top = [{"label": labels[i], "probability": float(row[i])} for i in order]
            out.append({"label": top[0]["label"], "top": top})
        elif task == "multilabel":
            present = [{"label": labels[i], "probability": float(p)} for i, p in enumerate(row) if p >= threshold]
            out.append(
                {
                    "labels": [p["label"] for p in present],
                    "scores": present,
                    "all": {labels[i]: float(p) for i, p in enumerate(row)},
                }
            )
        elif task == "binary":
            p = float(row.reshape(-1)[0])
            label = labels[1] if p >= threshold else labels[0]
            out.append({"label": label, "probability": p})
        else:
            values = row.reshape(-1)
            out.append({"value": float(values[0]) if values.size == 1 else values.tolist()})
    return out
