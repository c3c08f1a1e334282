"""A user's own model through the zoo's export path: :func:`package` (``torchzoo.package``: a module in hand) and
:func:`package_module`, the one step every source ends in (the saved programs and factories of
:mod:`torchzoo.export.user_sources` too): it builds an :class:`ExportContext` and check cases from what the user
declared and calls :func:`torchzoo.export.exporter.export_artifact`, exactly as a zoo model's export does.
:func:`torchzoo.export.verify.verify_user` re-checks such an artifact without its source code."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from torchzoo import __version__
from torchzoo.core.errors import TorchzooError, UserInputError
from torchzoo.core.tasks import TASKS, get_task
from torchzoo.core.tensor_spec import TensorSpec
from torchzoo.export.context import ExportContext
from torchzoo.export.exporter import CHECK_SEED, ExportOutcome, export_artifact
from torchzoo.export.formats import FORMATS
from torchzoo.export.user_cases import check_cases, output_specs
from torchzoo.export.user_inputs import (
    as_tensors,
    check_examples,
    declared_dims,
    tensor_specs,
    value_ranges,
)
from torchzoo.export.variants import VARIANTS, bounded_heldout

_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: what output 0 of a scored model holds -> the runtime's transform to probabilities
OUTPUT_KINDS = {
    "classification": {"logits": "softmax", "log_probs": "exp", "probs": "identity"},
    "binary": {"logits": "sigmoid", "probs": "identity"},
    "multilabel": {"logits": "sigmoid", "probs": "identity"},
    "regression": {"values": "identity"},
    "tensor": {"values": "identity"},
}
_PASSED = ("labels", "output", "output_names", "preprocessing", "tolerance", "summary")
REFERENCE = "the user's module, in eval mode, on CPU (its outputs on every case are saved in check_inputs.npz)"


class ExportFailed(TorchzooError):
    """A user's model whose export failed a check: nothing was published; the message lists every failing row."""

    def __init__(self, outcome: ExportOutcome) -> None:
        self.outcome = outcome
        lines = [line for r in outcome.reports if not r.acceptable for line in r.failures()]
        where = f" (report: {outcome.failure_report})" if outcome.failure_report else ""
        super().__init__(f"{outcome.model}: export failed, nothing published{where}: " + "; ".join(lines))


@dataclass
class Packaged:
    """A published artifact: its directory and every format's report (refused ones included)."""

    directory: Path
    outcome: ExportOutcome

    @property
    def refused(self) -> dict[str, str]:
        return {r.format: r.refused for r in self.outcome.reports if r.refused}


def check_name(name: str) -> None:
    if not _MODEL_NAME.match(name):
        raise UserInputError(
            f"name {name!r}: letters, digits, '.', '_' and '-', at most 64, starting with a letter or digit"
        )
    try:
        from torchzoo.train import registry
    except ImportError:
        return
    if name in registry.names():
        raise UserInputError(f"name {name!r} is a zoo model's; choose another name for your model")


def _formats(formats: str | Sequence[str], heldout: Any) -> list[str]:
    """The formats to make; ``all`` makes the int8/fp16 variants only where a held-out set can check them."""
    if formats == "all":
        return [f for f in FORMATS if heldout is not None or f not in VARIANTS]
    chosen = [formats] if isinstance(formats, str) else list(formats)
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown:
        raise UserInputError(f"unknown format {unknown[0]!r}; choose from: {', '.join(FORMATS)}, all")
    return chosen


def _heldout(heldout: Any, names: list[str]) -> tuple[tuple[np.ndarray, ...], np.ndarray] | None:
    """``(inputs, targets)``: inputs one array/tensor or a tuple in input order (or a dict by name)."""
    if heldout is None:
        return None
    if not (isinstance(heldout, tuple | list) and len(heldout) == 2):
        raise UserInputError("heldout: expected (inputs, targets)")
    inputs, targets = heldout
    if isinstance(inputs, Mapping):
        missing = [n for n in names if n not in inputs]
        if missing:
            raise UserInputError(f"heldout: no input {missing[0]!r}")
        inputs = [inputs[n] for n in names]
    elif not isinstance(inputs, tuple | list):
        inputs = [inputs]
    arrays = tuple(
        np.ascontiguousarray(a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)) for a in inputs
    )
    target = np.asarray(targets.detach().cpu().numpy() if isinstance(targets, torch.Tensor) else targets)
    if len(arrays) != len(names) or any(len(a) != len(target) for a in arrays):
        raise UserInputError(f"heldout: {len(names)} input arrays and the targets, all with the same number of samples")
    return arrays, target


def _labels(task: str, labels: Sequence[str] | None, outputs: tuple[TensorSpec, ...]) -> list[str]:
    out = outputs[0]
    if task in ("tensor", "regression"):
        if labels:
            raise UserInputError(f"labels: a {task} model has none")
        return []
    if len(out.shape) != 2 or not isinstance(out.shape[1], int) or out.dtype not in ("float32", "float64"):
        raise UserInputError(
            f"output {out.name!r}: a {task} model's output 0 is float scores [batch, width], "
            f"not {list(out.shape)} {out.dtype}"
        )
    width = out.shape[1]
    if task == "binary":
        if width != 1:
            raise UserInputError(f"output {out.name!r}: a binary model outputs one score per sample, not {width}")
        chosen = list(labels) if labels else ["negative", "positive"]
        if len(chosen) != 2:
            raise UserInputError(f"labels: a binary model has 2 (negative, positive), not {len(chosen)}")
        return chosen
    chosen = list(labels) if labels is not None else [str(i) for i in range(width)]
    if len(chosen) != width:
        raise UserInputError(f"labels: {len(chosen)} labels for an output of width {width}")
    if len(set(chosen)) != len(chosen) or not all(isinstance(x, str) and x for x in chosen):
        raise UserInputError("labels: distinct, non-empty strings")
    return chosen


def _output_names(model_outputs: Any, given: Sequence[str] | None, count: int) -> list[str]:
    if given is not None:
        return list(given)
    if isinstance(model_outputs, dict):
        return [str(k) for k in model_outputs]
    return ["output"] if count == 1 else [f"output_{i}" for i in range(count)]


def _context(
    *,
    model: nn.Module,
    example: tuple[torch.Tensor, ...],
    names: list[str],
    name: str,
    task: str,
    labels: Sequence[str] | None,
    dims: Any,
    spans: dict[str, tuple[float, float]],
    heldout: tuple[tuple[np.ndarray, ...], np.ndarray] | None,
    output: str | None,
    output_names: Sequence[str] | None,
    preprocessing: Mapping[str, Any] | None,
    tolerance: float | None,
    summary: str,
    origin: dict[str, Any],
    real_examples: bool,
    program: Any = None,
) -> tuple[ExportContext, list[Any]]:
    if task not in TASKS:
        raise UserInputError(f"task {task!r}: choose one of {', '.join(TASKS)}")
    kinds = OUTPUT_KINDS[task]
    output = output or next(iter(kinds))
    if output not in kinds:
        raise UserInputError(f"output {output!r}: a {task} model's output 0 holds one of {', '.join(kinds)}")
    check_examples(names, example, dims)
    inputs = tensor_specs(names, example, dims)
    cases = check_cases(
        inputs, example, dims, spans, real_examples, heldout[0] if heldout else None, np.random.default_rng(CHECK_SEED)
    )
    with torch.no_grad():
        raw = model(*example)
    count = len(raw) if isinstance(raw, tuple | list | dict) else 1
    outputs = output_specs(model, name, _output_names(raw, output_names, count), inputs, cases)
    chosen = _labels(task, labels, outputs)
    metrics: dict[str, Any] = {}
    if heldout is not None:
        from torchzoo.export.context import torch_runner

        scores = torch_runner(model)(heldout[0])[0]
        metrics[f"test_{get_task(task).metric_key}"] = get_task(task).metric(scores, heldout[1])
        metrics["test_samples"] = len(heldout[1])
    record = {
        "model": name,
        "task": task,
        "summary": summary or f"{type(model).__name__}, packaged with torchzoo.package",
        "dataset": {"name": "user", "stand_in": False, "note": "the user's own data; not known to torchzoo"},
        "labels": chosen,
        "inputs": [t.to_json() for t in inputs],
        "outputs": [t.to_json() for t in outputs],
        "preprocessing": dict(preprocessing) if preprocessing else {"kind": "tensors"},
        "postprocessing": {"output": outputs[0].name, "transform": kinds[output]},
        "metrics": metrics,
        "seed": CHECK_SEED,
        "profile": None,
        "recipe": None,
        "parameters": sum(p.numel() for p in model.parameters()),
        "origin": {
            **origin,
            "torchzoo": __version__,
            "output_kind": output,
            "dim_bounds": {k: list(v) for k, v in dims.bounds.items()},
            #: the values the random check inputs were drawn from (and what a warm-up may use)
            "value_ranges": {k: list(v) for k, v in spans.items()},
        },
    }
    bounds = {k: (lo, hi) for k, (lo, hi) in dims.bounds.items() if hi is not None or lo > 1}
    ctx = ExportContext(
        name=name,
        task=task,
        model=model,
        record=record,
        example=_exportable_example(example, inputs),
        inputs=inputs,
        outputs=outputs,
        rebuild=lambda: copy.deepcopy(model),
        dim_bounds={k: (lo, hi if hi is not None else 1 << 24) for k, (lo, hi) in bounds.items()},
        tolerance=1e-5 if tolerance is None else float(tolerance),
        tolerance_reason="float32 outputs"
        if tolerance is None
        else "declared by the user (torchzoo.package tolerance=)",
        torchscript_method="auto",
        torchscript_reason="torch.jit.script keeps every branch and loop of forward",
        program=program,
        refusable=frozenset({"torchscript", "pt2"}),
    )
    if heldout is not None:
        ctx.heldout = bounded_heldout(heldout, CHECK_SEED)
    return ctx, cases


def _exportable_example(example: tuple[torch.Tensor, ...], inputs: tuple[TensorSpec, ...]) -> tuple[torch.Tensor, ...]:
    """torch.export specializes a dynamic dim whose example size is 1: a batch of one sample is repeated to two."""
    if int(example[0].shape[0]) != 1:
        return example
    return tuple(t.repeat(2, *([1] * (t.ndim - 1))) for t in example)


def _publish(ctx: ExportContext, cases: list[Any], formats: list[str], artifacts_dir: str | Path) -> Packaged:
    root = Path(artifacts_dir)
    outcome = export_artifact(ctx, cases, formats, root, keep_previous=False, reference=REFERENCE)
    if not outcome.passed:
        raise ExportFailed(outcome)
    return Packaged(root / ctx.name, outcome)


def package(
    model: nn.Module,
    example_inputs: Any,
    name: str,
    task: str = "tensor",
    labels: Sequence[str] | None = None,
    dynamic_dims: Mapping[str, Mapping[int, Any]] | None = None,
    heldout: Any = None,
    artifacts_dir: str | Path = "artifacts",
    formats: str | Sequence[str] = "all",
    output: str | None = None,
    output_names: Sequence[str] | None = None,
    value_ranges_: Mapping[str, tuple[Any, Any]] | None = None,
    preprocessing: Mapping[str, Any] | None = None,
    tolerance: float | None = None,
    summary: str = "",
) -> Packaged:
    """Export ``model`` to every requested format, prove each equivalent to it, and publish
    ``artifacts_dir/<name>/`` as ``torchzoo export`` does for a zoo model (the public entry: ``torchzoo.package``).

    ``example_inputs``: a tensor, a tuple in ``forward``'s argument order, or a dict by argument name (the input
    names are forward's). ``task``: ``classification``, ``binary``, ``multilabel``, ``regression`` or ``tensor``
    (raw outputs, no labels). ``output``: what output 0 holds (classification: ``logits``, ``log_probs`` or
    ``probs``; binary/multilabel: ``logits`` or ``probs``). ``dynamic_dims``: ``{input: {axis: name | (name,
    min, max)}}``; axis 0 of every input is the batch dim whether declared or not. ``heldout``: ``(inputs,
    targets)``, which adds held-out check cases, the test metric and the int8/fp16 variants. ``value_ranges_``:
    the valid values of an input (``{"ids": (0, 999)}``) for the random check inputs (default: the examples'
    range). ``preprocessing``: an ``image`` or ``features`` block as in the manifest (default: raw tensors).
    Raises :class:`ExportFailed` (nothing published) when a check fails; a format an exporter cannot make
    (TorchScript, pt2) is refused with its reason instead (``Packaged.refused``)."""
    check_name(name)
    was_training = model.training
    model.eval()
    try:
        names, example = as_tensors(example_inputs, model)
        origin = {
            "kind": "python",
            "class": f"{type(model).__module__}.{type(model).__qualname__}",
            "was_training": was_training,
        }
        options = {
            "labels": labels, "heldout": heldout, "artifacts_dir": artifacts_dir, "formats": formats,
            "output": output, "output_names": output_names, "preprocessing": preprocessing,
            "tolerance": tolerance, "summary": summary,
        }  # fmt: skip
        return package_module(model, example, names, dynamic_dims, value_ranges_, name, task, origin, options)
    finally:
        model.train(was_training)


def package_module(
    model: nn.Module,
    example: tuple[torch.Tensor, ...],
    names: list[str],
    dynamic_dims: Mapping[str, Mapping[int, Any]] | None,
    ranges: Mapping[str, tuple[Any, Any]] | None,
    name: str,
    task: str,
    origin: dict[str, Any],
    options: dict[str, Any],
    real_examples: bool = True,
    program: Any = None,
) -> Packaged:
    """The one packaging step of every source (a module in hand, a saved program, a factory): the context and
    the check cases from what was declared, then the export path. ``options``: :func:`package`'s keywords
    ``labels``, ``heldout``, ``artifacts_dir``, ``formats``, ``output``, ``output_names``, ``preprocessing``,
    ``tolerance``, ``summary`` (absent: their defaults)."""
    unknown = [k for k in options if k not in (*_PASSED, "heldout", "artifacts_dir", "formats")]
    if unknown:
        raise TypeError(f"unexpected option {unknown[0]!r}")
    heldout = options.get("heldout")
    formats = _formats(options.get("formats") or "all", heldout)
    ctx, cases = _context(
        model=model,
        example=example,
        names=names,
        name=name,
        task=task,
        dims=declared_dims(names, dynamic_dims),
        spans=value_ranges(names, example, ranges),
        heldout=_heldout(heldout, names),
        real_examples=real_examples,
        program=program,
        origin=origin,
        **{k: options.get(k) for k in _PASSED},
    )
    return _publish(ctx, cases, formats, options.get("artifacts_dir") or "artifacts")
