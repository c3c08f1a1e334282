"""What every model family provides: the contract between the registry, the training runner and export.

A family module defines one ``FAMILY`` object, a subclass of :class:`Family`. The runner calls
``load_data`` -> ``build_model`` -> ``fit``; export calls ``build_model``, ``check_cases`` and the
input/output specs. Shapes use symbolic names ("batch", "seq") for dynamic axes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from torchzoo.core.tensor_spec import TensorSpec
from torchzoo.train.loop import EpochCallback
from torchzoo.train.recipe import Recipe
from torchzoo.train.spec import ModelSpec


@dataclass
class TrainContext:
    """How a run trains: the profile (``full`` is the tutorial's recipe, ``quick`` minutes for tests and
    CI), the seed, a per-epoch callback for progress display, and whether to resume from the checkpoint
    of an interrupted run."""

    profile: str = "full"
    seed: int = 0
    on_epoch: EpochCallback | None = None
    resume: bool = False

    @property
    def quick(self) -> bool:
        return self.profile == "quick"


@dataclass
class TrainResult:
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    #: what the run trained with; the runner writes ``recipe.to_json()`` into train.json
    recipe: Recipe
    #: extra files for the artifact directory (e.g. a figure), by file name
    files: dict[str, bytes] = field(default_factory=dict)


@dataclass
class CheckCase:
    """One set of inputs for the equivalence check: real held-out data or random, at some batch/length."""

    name: str
    inputs: tuple[np.ndarray, ...]
    kind: str  # "heldout" | "random"
    #: a case-specific abs tolerance (None: the family's) and relative tolerance: an element passes when
    #: |diff| <= tolerance + rtol * |reference|; with the reason the math justifies it
    tolerance: float | None = None
    tolerance_reason: str | None = None
    rtol: float = 0.0


class Family(ABC):
    """Base class of a model family (architecture + data + recipe)."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    #: float32 outputs are checked at 1e-5 abs; a family may justify another tolerance.
    tolerance: float = 1e-5
    tolerance_reason: str = "float32 outputs"
    #: "script" where forward has data-dependent control flow; "trace" only where the check proves it.
    torchscript_method: str = "script"
    torchscript_reason: str = "torch.jit.script keeps every branch and loop of forward"
    #: bounds of symbolic dims for the ONNX exporter, e.g. {"seq": (1, 64)}; unbounded otherwise.
    dim_bounds: dict[str, tuple[int, int]] = {}  # noqa: RUF012
    #: how the runtime turns output 0 into what it shows: exp (log-probs), softmax (logits), sigmoid,
    #: identity (probabilities or regression values).
    output_transform: str = "identity"
    #: "dynamo" (torch.onnx.export's default, the only exporter in torchzoo.export.formats.ONNX_EXPORTERS);
    #: a loop that torch.export would unroll is exported through onnx_module in scan form.
    onnx_exporter: str = "dynamo"
    onnx_exporter_reason: str = "torch.onnx.export's default exporter (torch.export-based)"
    #: why onnx_module wraps the model, when it does.
    onnx_wrapper_reason: str | None = None

    @abstractmethod
    def build_model(self, spec: ModelSpec) -> nn.Module: ...

    @abstractmethod
    def load_data(self, spec: ModelSpec, data_dir: Path | None, seed: int) -> Any: ...

    @abstractmethod
    def fit(self, spec: ModelSpec, model: nn.Module, data: Any, ctx: TrainContext) -> TrainResult: ...

    @abstractmethod
    def labels(self, data: Any) -> list[str]: ...

    @abstractmethod
    def preprocessing(self, spec: ModelSpec) -> dict[str, Any]: ...

    @abstractmethod
    def check_cases(self, data: Any, rng: np.random.Generator) -> list[CheckCase]:
        """Held-out real inputs and random inputs at batch 1 and a larger batch (several lengths)."""

    def dataset_info(self, spec: ModelSpec, data: Any) -> dict[str, Any]:
        """Where the data came from and whether it is a stand-in (recorded in the manifest)."""
        return {"name": spec.dataset, "stand_in": False}

    def onnx_module(self, model: nn.Module) -> nn.Module:
        """The module handed to the ONNX exporter (a family may wrap it, e.g. to bound a loop)."""
        return model

    def heldout_set(self, data: Any) -> tuple[tuple[np.ndarray, ...], np.ndarray] | None:
        """Model-ready held-out test inputs and their targets, for the int8/fp16 variants' accuracy check.
        Default: ``data.test`` when it is an ``(inputs, targets)`` pair; None where a family has no test split."""
        return _pair(getattr(data, "test", None))

    def calibration_set(self, data: Any) -> tuple[np.ndarray, ...] | None:
        """Model-ready training inputs the static int8 quantizer calibrates on (default: ``data.train``'s)."""
        pair = _pair(getattr(data, "train", None))
        return None if pair is None else pair[0]


def _pair(split: Any) -> tuple[tuple[np.ndarray, ...], np.ndarray] | None:
    if isinstance(split, tuple) and len(split) == 2:
        return (np.asarray(split[0]),), np.asarray(split[1])
    return None


def standard_check_cases(
    heldout: tuple[np.ndarray, ...],
    rng: np.random.Generator,
    random_inputs: Callable[[np.random.Generator, int], tuple[np.ndarray, ...]],
    large_batch: int = 64,
) -> list[CheckCase]:
    """The usual check set for fixed-shape models: held-out real inputs at batch 1 and ``large_batch``
    (random picks), and random inputs from ``random_inputs(rng, batch)`` at the same two batch sizes.

    ``heldout`` holds model-ready arrays (already preprocessed), first axis = samples.
    """
    n = len(heldout[0])
    picked = rng.choice(n, size=min(n, large_batch), replace=False)
    first = int(rng.integers(n))
    return [
        CheckCase("heldout_b1", tuple(np.ascontiguousarray(a[first : first + 1]) for a in heldout), "heldout"),
        CheckCase(f"heldout_b{len(picked)}", tuple(np.ascontiguousarray(a[picked]) for a in heldout), "heldout"),
        CheckCase("random_b1", random_inputs(rng, 1), "random"),
        CheckCase(f"random_b{large_batch}", random_inputs(rng, large_batch), "random"),
    ]
