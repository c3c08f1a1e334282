"""The equivalence check's cases for a user's model, and its output specs read from how it behaves.

Cases: the user's examples (real inputs where the user gave them), the held-out set at batch 1 and up to 64
where one is given, and random inputs at batch 1, at a larger batch and at the smallest and largest size of
every other dynamic dim (an unbounded dim: twice the example's size). Random values stay valid: integers and
floats are drawn uniformly from the input's value range (declared, else the examples' own min..max), booleans
from the values the examples hold, so an embedding never gets an out-of-range id.

Output specs: each output's axis is named after the input dim whose size it follows across the cases (axis 0
must follow the batch), fixed where its size never changes, and ``<output>_<axis>`` where it changes with no
input dim."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from torchzoo.core.errors import UserInputError, first_line
from torchzoo.core.tensor_spec import TensorSpec
from torchzoo.export.context import flatten_outputs
from torchzoo.export.user_inputs import BATCH, DTYPES, Dims
from torchzoo.train.family import CheckCase

LARGE_BATCH = 16
HELDOUT_BATCH = 64
#: the largest size a check case gives an unbounded or very large dim
MAX_CASE_SIZE = 1024


@dataclass
class CaseSizes:
    name: str
    sizes: dict[str, int]


def _example_sizes(specs: Sequence[TensorSpec], tensors: Sequence[torch.Tensor]) -> dict[str, int]:
    return {
        d: int(t.shape[a])
        for s, t in zip(specs, tensors, strict=True)
        for a, d in enumerate(s.shape)
        if isinstance(d, str)
    }


def case_sizes(specs: Sequence[TensorSpec], tensors: Sequence[torch.Tensor], dims: Dims) -> list[CaseSizes]:
    """The dim sizes of every random case."""
    base = _example_sizes(specs, tensors)
    low, high = dims.bounds[BATCH]
    big = min(LARGE_BATCH, high or LARGE_BATCH)
    plans = [CaseSizes("random_b1", {**base, BATCH: max(1, low)}), CaseSizes(f"random_b{big}", {**base, BATCH: big})]
    for dim, example in base.items():
        if dim == BATCH:
            continue
        low, high = dims.bounds[dim]
        largest = min(high if high is not None else 2 * example, MAX_CASE_SIZE)
        for size in dict.fromkeys((low, largest)):
            plans.append(CaseSizes(f"random_{dim}{size}", {**base, BATCH: 2, dim: size}))
    return plans


def _random(
    spec: TensorSpec, sizes: dict[str, int], example: torch.Tensor, span: tuple[float, float], rng: np.random.Generator
) -> np.ndarray:
    shape = [sizes[d] if isinstance(d, str) else d for d in spec.shape]
    dtype = np.dtype(spec.dtype)
    low, high = span
    if dtype == np.bool_:
        seen = np.unique(example.numpy())
        return rng.choice(seen, size=shape).astype(np.bool_)
    if dtype.kind == "i":
        return rng.integers(int(np.ceil(low)), int(np.floor(high)) + 1, size=shape).astype(dtype)
    return rng.uniform(low, high, size=shape).astype(dtype)


def check_cases(
    specs: Sequence[TensorSpec],
    tensors: Sequence[torch.Tensor],
    dims: Dims,
    spans: dict[str, tuple[float, float]],
    real_examples: bool,
    heldout: tuple[np.ndarray, ...] | None,
    rng: np.random.Generator,
) -> list[CheckCase]:
    cases = [CheckCase("example", tuple(t.numpy() for t in tensors), "heldout" if real_examples else "random")]
    if heldout is not None:
        count = len(heldout[0])
        picked = np.sort(rng.choice(count, size=min(count, HELDOUT_BATCH), replace=False))
        first = int(rng.integers(count))
        cases.append(
            CheckCase("heldout_b1", tuple(np.ascontiguousarray(a[first : first + 1]) for a in heldout), "heldout")
        )
        cases.append(
            CheckCase(f"heldout_b{len(picked)}", tuple(np.ascontiguousarray(a[picked]) for a in heldout), "heldout")
        )
    for plan in case_sizes(specs, tensors, dims):
        arrays = tuple(_random(s, plan.sizes, t, spans[s.name], rng) for s, t in zip(specs, tensors, strict=True))
        cases.append(CheckCase(plan.name, arrays, "random"))
    return cases


def eager_outputs(model: nn.Module, name: str, case: CheckCase) -> list[torch.Tensor]:
    """The model's outputs on one case; a model that fails on it is a one-line UserInputError naming the case."""
    try:
        with torch.no_grad():
            return flatten_outputs(model(*(torch.from_numpy(a) for a in case.inputs)))
    except UserInputError:
        raise
    except Exception as exc:
        shapes = ", ".join(str(list(a.shape)) for a in case.inputs)
        raise UserInputError(
            f"{name}: the model fails on check case {case.name} (inputs {shapes}): {first_line(exc)}; "
            "declare each dynamic dim's range as (name, min, max)"
        ) from None


def output_specs(
    model: nn.Module, name: str, output_names: Sequence[str], specs: Sequence[TensorSpec], cases: Sequence[CheckCase]
) -> tuple[TensorSpec, ...]:
    """Each output's name, dtype and shape, with its axes named after the input dims they follow."""
    runs = [eager_outputs(model, name, c) for c in cases]
    dim_sizes = [
        {
            d: int(a.shape[i])
            for s, a in zip(specs, c.inputs, strict=True)
            for i, d in enumerate(s.shape)
            if isinstance(d, str)
        }
        for c in cases
    ]
    count = len(runs[0])
    if len(output_names) != count:
        raise UserInputError(f"{name}: {len(output_names)} output names for {count} outputs")
    result = []
    for index, out_name in enumerate(output_names):
        first = runs[0][index]
        if first.dtype not in DTYPES:
            raise UserInputError(f"output {out_name!r}: {first.dtype} is not one of {', '.join(DTYPES.values())}")
        if first.ndim == 0:
            raise UserInputError(f"output {out_name!r}: a scalar; outputs are batches (first axis: samples)")
        shape: list[int | str] = []
        for axis in range(first.ndim):
            seen = [int(r[index].shape[axis]) if r[index].ndim == first.ndim else -1 for r in runs]
            follows = [d for d in dim_sizes[0] if [s[d] for s in dim_sizes] == seen]
            if axis == 0 and BATCH not in follows:
                raise UserInputError(f"output {out_name!r}: axis 0 does not follow the batch; outputs are batch-first")
            if axis == 0 or (follows and len(set(seen)) > 1):
                shape.append(BATCH if axis == 0 else follows[0])
            elif len(set(seen)) == 1:
                shape.append(seen[0])
            else:
                shape.append(f"{out_name}_{axis}")
        result.append(TensorSpec(out_name, tuple(shape), DTYPES[first.dtype]))
    return tuple(result)
