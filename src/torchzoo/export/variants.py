"""The int8 and fp16 variants: written from ``model.onnx`` and checked by task accuracy, not by equivalence.

A quantized graph is not equal to the float32 one to 1e-5 and is not checked as if it were. Its check runs
the float32 graph (``model.onnx``, itself proven equivalent to eager) and the variant through onnxruntime
(CPU, every optimization on, as the runtime runs) on the held-out test set saved in the artifact
(``heldout.npz``: at most :data:`MAX_HELDOUT_SAMPLES` samples and :data:`MAX_HELDOUT_BYTES` of inputs) and
compares the task's metric, the top-1 (decision) agreement and the max abs difference against
:data:`THRESHOLDS`. A variant outside them is *refused*: its file is not published and the manifest lists it
under ``variants.refused`` with the reason; the other formats are published as usual. ``verify`` re-runs the
check from the artifact's files, and there a published variant outside its thresholds fails.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from torchzoo.core import artifact
from torchzoo.core.graph_check import ONNXRUNTIME_DOMAIN, check_graph
from torchzoo.core.session import create_session
from torchzoo.core.tasks import get_task
from torchzoo.export.equivalence import CheckRow, FormatReport, compare_outputs
from torchzoo.export.quantize import convert_fp16, quantize_int8

#: export format -> the runtime's variant name (``predict --variant``)
VARIANTS = {fmt: name for name, fmt in artifact.VARIANT_FORMATS.items() if fmt != "onnx"}
MAX_HELDOUT_SAMPLES = 2000
MAX_HELDOUT_BYTES = 16 << 20
RUN_BATCH = 256
#: per task: how far the variant's metric may fall behind float32's, and how often its decision must agree
THRESHOLDS: dict[str, dict[str, Any]] = {
    "classification": {
        "metric": "accuracy",
        "max_drop_points": 0.5,
        "min_agreement": 0.99,
        "rule": "test accuracy at most 0.5 points below float32's and top-1 agreement with float32 >= 99%",
    },
    "binary": {
        "metric": "accuracy (p > 0.5)",
        "max_drop_points": 0.5,
        "min_agreement": 0.99,
        "rule": "test accuracy at most 0.5 points below float32's and the same decision (p > 0.5) on >= 99%",
    },
    "multilabel": {
        "metric": "exact-match accuracy (every label p > 0.5 right)",
        "max_drop_points": 0.5,
        "min_agreement": 0.99,
        "rule": "exact-match accuracy at most 0.5 points below float32's and the same label set on >= 99%",
    },
    "regression": {
        "metric": "mse",
        "max_relative_increase": 0.01,
        "rule": "test MSE at most 1% above float32's",
    },
    "tensor": {
        "metric": "mse of output 0 against the held-out targets",
        "max_relative_increase": 0.01,
        "rule": "held-out MSE of output 0 at most 1% above float32's",
    },
}


class Refused(Exception):
    """A variant that cannot be made or checked for this model (the reason is the message)."""


@dataclass
class VariantReport(FormatReport):
    """A variant's check: one row (the held-out test set), the metrics, and why it was refused, if it was."""

    accuracy: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        if self.refused or self.error or not self.accuracy:
            return super().summary()
        a = self.accuracy
        return f"{self.format}: {'pass' if self.passed else 'FAIL'}, {a['verdict']}"

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "accuracy_check": self.accuracy}


# --- the held-out set -------------------------------------------------------------------------------


@dataclass
class Heldout:
    """Model-ready held-out inputs and their targets (first axis: samples)."""

    inputs: tuple[np.ndarray, ...]
    targets: np.ndarray
    note: str = ""


def bounded_heldout(found: tuple[tuple[np.ndarray, ...], np.ndarray] | None, seed: int) -> Heldout | None:
    """The family's held-out set, cut to a seeded random subset within the size bounds (kept in order)."""
    if found is None:
        return None
    inputs, targets = found
    count = len(targets)
    per_sample = sum(a[:1].nbytes for a in inputs)
    keep = min(count, MAX_HELDOUT_SAMPLES, max(1, MAX_HELDOUT_BYTES // max(per_sample, 1)))
    index = np.sort(np.random.default_rng(seed).choice(count, size=keep, replace=False))
    note = f"{keep} of the {count} held-out test samples" + (" (seeded random subset)" if keep < count else "")
    return Heldout(tuple(np.ascontiguousarray(a[index]) for a in inputs), np.ascontiguousarray(targets[index]), note)


def save_heldout(heldout: Heldout, target: Path) -> None:
    arrays = {f"input/{i}": a for i, a in enumerate(heldout.inputs)} | {"targets": heldout.targets}
    with artifact.atomic_path(target) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def load_heldout(data: bytes, n_inputs: int, note: str = "") -> Heldout:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return Heldout(tuple(npz[f"input/{i}"] for i in range(n_inputs)), npz["targets"], note)


# --- writers ----------------------------------------------------------------------------------------


def _source(ctx: Any, target: Path) -> Path:
    if any(t.dtype == "float64" for t in ctx.inputs):
        raise Refused("a float64 model: the int8/fp16 variants are made from float32 graphs")
    if ctx.heldout is None:
        raise Refused("no held-out test set to check the variant's accuracy on")
    source = target.parent / artifact.ONNX
    if not source.is_file():
        raise Refused(f"made from {artifact.ONNX}: export --format onnx as well")
    return source


def write_int8(ctx: Any, target: Path) -> dict[str, Any]:
    source = _source(ctx, target)
    try:
        info = quantize_int8(source, target, [t.name for t in ctx.inputs], ctx.calibration)
    except ValueError as exc:
        raise Refused(str(exc)) from None
    _probe(target, ctx.heldout.inputs)
    return info


def write_fp16(ctx: Any, target: Path) -> dict[str, Any]:
    info = convert_fp16(_source(ctx, target), target)
    _probe(target, ctx.heldout.inputs)
    return info


# onnxruntime can crash outright on a converted graph (measured: the fp16 mnist-rnn graph, SIGSEGV on its
# first run, onnxruntime 1.31 CPU); a crash cannot be caught in this process, so the variant runs once in a
# child process first, and a crash there refuses the variant instead of ending the export.
PROBE = """
import sys, numpy as np, onnxruntime as ort
session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
with np.load(sys.argv[2]) as npz:
    session.run(None, {i.name: npz[f"input/{k}"] for k, i in enumerate(session.get_inputs())})
"""


def _probe(graph: Path, inputs: tuple[np.ndarray, ...]) -> None:
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        sample = Path(tmp) / "sample.npz"
        np.savez(sample, **{f"input/{k}": a[:2] for k, a in enumerate(inputs)})
        try:
            result = subprocess.run(
                [sys.executable, "-c", PROBE, str(graph), str(sample)], capture_output=True, text=True, timeout=300
            )
        except subprocess.TimeoutExpired:
            raise Refused("onnxruntime did not finish one run of this graph in 300 s") from None
    if result.returncode < 0:
        raise Refused(f"onnxruntime crashed (signal {-result.returncode}) running this graph on the CPU")


# --- the check --------------------------------------------------------------------------------------


def _run(path: Path, names: list[str], inputs: tuple[np.ndarray, ...], extra: frozenset[str]) -> list[np.ndarray]:
    graph = path.read_bytes()
    check_graph(graph, str(path), extra)  # what the runtime will accept, checked before a session
    session = create_session(graph, "cpu", "all").session
    parts: list[list[np.ndarray]] = []
    for start in range(0, len(inputs[0]), RUN_BATCH):
        feeds = {n: a[start : start + RUN_BATCH] for n, a in zip(names, inputs, strict=True)}
        parts.append(session.run(None, feeds))
    return [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]


def check_variant(ctx: Any, fmt: str, path: Path, heldout: Heldout) -> VariantReport:
    """Run float32 and the variant on the held-out set; the verdict against the task's thresholds."""
    task_name = ctx.task
    report = VariantReport(fmt, None, "task accuracy vs float32 on the held-out test set")  # type: ignore[arg-type]
    names = [t.name for t in ctx.inputs]
    reference = _run(path.parent / artifact.ONNX, names, heldout.inputs, frozenset())
    candidate = _run(path, names, heldout.inputs, frozenset({ONNXRUNTIME_DOMAIN}))
    task, limits = get_task(task_name), THRESHOLDS[task_name]
    diffs = compare_outputs(reference, candidate)
    metric32, metric = task.metric(reference[0], heldout.targets), task.metric(candidate[0], heldout.targets)
    agreement = task.agreement(reference[0], candidate[0])
    if "max_relative_increase" in limits:
        allowed = metric32 * (1 + limits["max_relative_increase"])
        ok = metric <= allowed + 1e-12
        verdict = f"test MSE {metric:.6g} vs float32 {metric32:.6g} (allowed <= {allowed:.6g})"
    else:
        drop = (metric32 - metric) * 100
        ok = drop <= limits["max_drop_points"] and agreement is not None and agreement >= limits["min_agreement"]
        verdict = (
            f"{limits['metric']} {metric:.4f} vs float32 {metric32:.4f} (drop {drop:+.2f} points, allowed "
            f"<= {limits['max_drop_points']}), agreement {agreement:.2%} (>= {limits['min_agreement']:.0%})"
        )
    report.accuracy = {
        "metric": limits["metric"],
        "float32": metric32,
        "variant": metric,
        "agreement_with_float32": agreement,
        "max_abs_diff": max(d[0] for d in diffs),
        "samples": len(heldout.targets),
        "heldout": heldout.note,
        "thresholds": limits,
        "within_thresholds": ok,
        "verdict": verdict,
    }
    for index, (max_abs, max_rel, _) in enumerate(diffs):
        report.rows.append(
            CheckRow(
                runner="onnxruntime_cpu_opt_all",
                case="heldout_testset",
                kind="heldout",
                input_shapes=[list(a.shape) for a in heldout.inputs],
                output=ctx.outputs[index].name,
                max_abs=max_abs,
                max_rel=max_rel,
                agreement=agreement if index == 0 else None,
                tolerance=None,  # type: ignore[arg-type]
                passed=True,
            )
        )
    if not ok:
        report.refused = f"outside the {task_name} thresholds: {verdict}"
    return report


def manifest_block(task: str, formats: dict[str, Any], directory: Path, refused: dict[str, str]) -> dict[str, Any]:
    """The manifest's ``variants``: the default, the thresholds, every published variant (file, size, sha256,
    accuracy) and every refused one with the reason."""
    published: dict[str, Any] = {}
    onnx = directory / artifact.ONNX
    if onnx.is_file():
        published["fp32"] = {"format": "onnx", "file": artifact.ONNX, "bytes": onnx.stat().st_size}
        published["fp32"]["sha256"] = artifact.sha256_file(onnx)
    for fmt, name in VARIANTS.items():
        path = directory / artifact.FORMAT_FILES[fmt]
        if fmt in formats and path.is_file():
            check = formats[fmt].get("accuracy_check", {})
            published[name] = {
                "format": fmt,
                "file": path.name,
                "bytes": path.stat().st_size,
                "sha256": artifact.sha256_file(path),
                "accuracy": check.get("variant"),
                "float32_accuracy": check.get("float32"),
                "agreement_with_float32": check.get("agreement_with_float32"),
                "max_abs_diff": check.get("max_abs_diff"),
            }
            if "fp32" in published and published["fp32"].get("accuracy") is None:
                published["fp32"]["accuracy"] = check.get("float32")
    return {
        "default": "fp32",
        "metric": THRESHOLDS[task]["metric"],
        "thresholds": THRESHOLDS[task],
        "heldout_file": artifact.HELDOUT,
        "published": published,
        "refused": {VARIANTS[fmt]: why for fmt, why in refused.items()},
    }
