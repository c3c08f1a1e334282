"""The four tasks as data: each knows its headline metric, how two outputs agree on a prediction, how
scores become the results a person reads, and how those results are shown as table cells. Torch-free:
training passes numpy arrays, the runtime and the equivalence checker use the same objects."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from torchzoo.core.errors import UserInputError

Results = list[dict[str, Any]]


class Task:
    name: ClassVar[str]
    #: the key of the headline validation metric in a history row (``val_<key>``)
    metric_key: ClassVar[str] = "acc"

    def metric(self, output: np.ndarray, target: np.ndarray) -> float:
        """The headline metric of a batch of outputs against targets."""
        raise NotImplementedError

    def decisions(self, output: np.ndarray) -> np.ndarray | None:
        """The prediction per sample (what a user acts on), or None where there is none (regression)."""
        return None

    def agreement(self, reference: np.ndarray, candidate: np.ndarray) -> float | None:
        """Fraction of samples on which two outputs make the same prediction; None for regression."""
        ref, cand = self.decisions(reference), self.decisions(candidate)
        if ref is None or cand is None:
            return None
        same = (ref == cand).reshape(len(ref), -1).all(axis=1)
        return float(np.mean(same))

    def to_units(self, scores: np.ndarray, post: dict[str, Any]) -> np.ndarray:
        """Scores in the units the results report (the manifest's postprocessing may rescale)."""
        return scores

    def results(self, scores: np.ndarray, labels: list[str], top_k: int, threshold: float) -> Results:
        """One plain dict per sample from transformed scores ``[n, width]``."""
        raise NotImplementedError

    def columns(self, top_k: int, threshold: float, width: int) -> list[str]:
        raise NotImplementedError

    def cells(self, result: dict[str, Any], top_k: int) -> list[str]:
        raise NotImplementedError


class Classification(Task):
    name = "classification"

    def metric(self, output: np.ndarray, target: np.ndarray) -> float:
        return float(np.mean(output.argmax(axis=1) == target))

    def decisions(self, output: np.ndarray) -> np.ndarray:
        return output.argmax(axis=-1)

    def results(self, scores: np.ndarray, labels: list[str], top_k: int, threshold: float) -> Results:
        out = []
        for row in scores:
            order = np.argsort(-row, kind="stable")[: max(1, top_k)]
            top = [{"label": labels[i], "probability": float(row[i])} for i in order]
            out.append({"label": top[0]["label"], "top": top})
        return out

    def columns(self, top_k: int, threshold: float, width: int) -> list[str]:
        return [f"#{rank}" for rank in range(1, min(top_k, width) + 1)]

    def cells(self, result: dict[str, Any], top_k: int) -> list[str]:
        return [f"{t['label']} {t['probability']:.3f}" for t in result["top"]]


class Binary(Task):
    name = "binary"

    def metric(self, output: np.ndarray, target: np.ndarray) -> float:
        return float(np.mean((output.reshape(target.shape) > 0.5) == (target > 0.5)))

    def decisions(self, output: np.ndarray) -> np.ndarray:
        return output > 0.5

    def results(self, scores: np.ndarray, labels: list[str], top_k: int, threshold: float) -> Results:
        out = []
        for row in scores:
            p = float(row.reshape(-1)[0])
            out.append({"label": labels[1] if p >= threshold else labels[0], "probability": p})
        return out

    def columns(self, top_k: int, threshold: float, width: int) -> list[str]:
        return ["label", "p(positive)"]

    def cells(self, result: dict[str, Any], top_k: int) -> list[str]:
        return [result["label"], f"{result['probability']:.4f}"]


class Multilabel(Task):
    name = "multilabel"

    def metric(self, output: np.ndarray, target: np.ndarray) -> float:
        """Exact match: every label of the sample right."""
        return float(np.mean(((output > 0.5) == (target > 0.5)).all(axis=1)))

    def decisions(self, output: np.ndarray) -> np.ndarray:
        return output > 0.5

    def results(self, scores: np.ndarray, labels: list[str], top_k: int, threshold: float) -> Results:
        out = []
        for row in scores:
            present = [{"label": labels[i], "probability": float(p)} for i, p in enumerate(row) if p >= threshold]
            out.append(
                {
                    "labels": [p["label"] for p in present],
                    "scores": present,
                    "all": {labels[i]: float(p) for i, p in enumerate(row)},
                }
            )
        return out

    def columns(self, top_k: int, threshold: float, width: int) -> list[str]:
        return [f"labels (p >= {threshold:g})", "top scores"]

    def cells(self, result: dict[str, Any], top_k: int) -> list[str]:
        best = sorted(result["all"].items(), key=lambda kv: -kv[1])[:top_k]
        return [", ".join(result["labels"]) or "-", ", ".join(f"{k} {v:.3f}" for k, v in best)]


class Regression(Task):
    name = "regression"
    metric_key = "mse"

    def metric(self, output: np.ndarray, target: np.ndarray) -> float:
        """Mean squared error."""
        diff = output.reshape(target.shape).astype(np.float64) - target
        return float(np.mean(diff * diff))

    def to_units(self, scores: np.ndarray, post: dict[str, Any]) -> np.ndarray:
        """Back to the target's units: ``scores * scale + offset`` (a model trained on standardized targets)."""
        return scores * float(post.get("scale", 1.0)) + float(post.get("offset", 0.0))

    def results(self, scores: np.ndarray, labels: list[str], top_k: int, threshold: float) -> Results:
        out = []
        for row in scores:
            values = row.reshape(-1)
            out.append({"value": float(values[0]) if values.size == 1 else values.tolist()})
        return out

    def columns(self, top_k: int, threshold: float, width: int) -> list[str]:
        return ["value"]

    def cells(self, result: dict[str, Any], top_k: int) -> list[str]:
        value = result["value"]
        return [f"{value:.6g}" if isinstance(value, float) else ", ".join(f"{v:.6g}" for v in value)]


class Tensors(Regression):
    """A model whose outputs are not scores (``task="tensor"``: embeddings, masks, several outputs): no labels
    and no decision; the runtime returns every output as it is. Its headline metric, where a held-out set
    with targets for output 0 is given, is the mean squared error, as for regression."""

    name = "tensor"

    def to_units(self, scores: np.ndarray, post: dict[str, Any]) -> np.ndarray:
        return scores

    def results(self, scores: np.ndarray, labels: list[str], top_k: int, threshold: float) -> Results:
        return [{"value": row.tolist()} for row in scores]


TASKS: dict[str, Task] = {t.name: t for t in (Classification(), Binary(), Multilabel(), Regression(), Tensors())}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise UserInputError(f"unknown task '{name}'; this torchzoo knows {', '.join(TASKS)}")
    return TASKS[name]
