"""Tabular preprocessing shared by training and the torch-free runtime (numpy only).

A family's manifest ``preprocessing`` for numeric features is::

    {"kind": "features", "n_features": k, "feature_names": [...], "mean": [...] | None,
     "std": [...] | None, "dtype": "float32" | "float64", "description": "..."}

Raw rows ``[n, k]`` become model input as ``(x - mean) / std`` (when mean/std are given), cast to dtype.
Training standardizes with :func:`standardize`, the runtime too, so both compute the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def feature_params(
    names: Sequence[str],
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    dtype: str,
    what: str,
) -> dict[str, Any]:
    """The manifest's preprocessing entry for a model on ``len(names)`` numeric features."""
    return {
        "kind": "features",
        "n_features": len(names),
        "feature_names": list(names),
        "mean": None if mean is None else [float(m) for m in mean],
        "std": None if std is None else [float(s) for s in std],
        "dtype": dtype,
        "description": what,
    }


def standardize(rows: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """Raw feature rows ``[n, k]`` -> model input ``[n, k]`` of the manifest's dtype."""
    x = np.asarray(rows, dtype=np.float64).reshape(-1, params["n_features"])
    if params.get("mean") is not None:
        x = (x - np.asarray(params["mean"])) / np.asarray(params["std"])
    return np.ascontiguousarray(x.astype(params["dtype"]))
