"""A user's model's inputs as torchzoo describes them: names from the forward's signature, dtypes, dynamic dims
and their ranges, and the valid values of integer inputs. Parses what the Python API (``dynamic_dims``) and the
command line (``--input ids:int64[batch,seq]``, ``--dim seq=1:128``, ``--values ids=0:999``) declare, and checks
the example inputs against it. Every problem is a one-line :class:`UserInputError`."""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from torchzoo.core.errors import UserInputError
from torchzoo.core.tensor_spec import TensorSpec

#: the dtypes a user's model may take and return (what the runtime and the protocol carry)
DTYPES = {
    torch.float32: "float32",
    torch.float64: "float64",
    torch.int64: "int64",
    torch.int32: "int32",
    torch.bool: "bool",
}
TORCH_DTYPES = {name: dtype for dtype, name in DTYPES.items()}
BATCH = "batch"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_INPUT = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*):(?P<dtype>[a-z0-9]+)\[(?P<dims>[^\]]*)\]$")
_RANGE = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)=(?P<low>-?\d+):(?P<high>-?\d+)$")
#: the size examples get along a dynamic dim the factory path has no example for (clamped to the dim's range)
DEFAULT_SIZES = {BATCH: 4}
DEFAULT_SIZE = 8


@dataclass
class Dims:
    """The symbolic dims: per input, axis -> dim name; per dim name, its (min, max) (max None: unbounded)."""

    axes: dict[str, dict[int, str]] = field(default_factory=dict)
    bounds: dict[str, tuple[int, int | None]] = field(default_factory=dict)

    def add(self, name: str, axis: int, dim: Any, where: str) -> None:
        if isinstance(dim, str):
            dim_name, low, high = dim, None, None
        elif isinstance(dim, Sequence) and len(dim) == 3 and isinstance(dim[0], str):
            dim_name, low, high = dim[0], int(dim[1]), (None if dim[2] is None else int(dim[2]))
        else:
            raise UserInputError(f"{where}: a dim is a name or (name, min, max), not {dim!r}")
        if not _NAME.match(dim_name):
            raise UserInputError(f"{where}: {dim_name!r} is not a dim name (letters, digits, _)")
        if low is not None:
            if low < 1 or (high is not None and high < low):
                raise UserInputError(f"{where}: {dim_name} range ({low}, {high}) is not 1 <= min <= max")
            known = self.bounds.get(dim_name)
            if known is not None and known != (1, None) and known != (low, high):
                raise UserInputError(f"{where}: {dim_name} has two ranges, {known} and ({low}, {high})")
            self.bounds[dim_name] = (low, high)
        else:
            self.bounds.setdefault(dim_name, (1, None))
        self.axes.setdefault(name, {})[axis] = dim_name


def positional_names(model: nn.Module) -> list[str]:
    """The names of the forward's positional arguments, in order."""
    try:
        parameters = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        parameters = []
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def forward_names(model: nn.Module, count: int) -> list[str]:
    """The names of the forward's first ``count`` arguments: the model's input names."""
    positional = positional_names(model)
    if len(positional) < count:
        return [f"input_{i}" for i in range(count)] if count > 1 else ["input"]
    return positional[:count]


def as_tensors(example_inputs: Any, model: nn.Module) -> tuple[list[str], tuple[torch.Tensor, ...]]:
    """The example inputs as (names, tensors): a tensor, a tuple of them in forward's order, or a dict by name."""
    if isinstance(example_inputs, Mapping):
        order = positional_names(model)
        unknown = [k for k in example_inputs if k not in order]
        if unknown:
            raise UserInputError(f"example_inputs: {unknown[0]!r} is not an argument of {type(model).__name__}.forward")
        names = order[: len(example_inputs)]
        if set(names) != set(example_inputs):
            raise UserInputError(
                f"example_inputs: give forward's first {len(example_inputs)} arguments ({', '.join(names)}); the "
                "model is called with them in that order"
            )
        values = [example_inputs[n] for n in names]
    else:
        values = list(example_inputs) if isinstance(example_inputs, tuple | list) else [example_inputs]
        names = forward_names(model, len(values))
    tensors = []
    for name, value in zip(names, values, strict=True):
        tensor = torch.as_tensor(np.asarray(value)) if not isinstance(value, torch.Tensor) else value.detach().cpu()
        if tensor.dtype not in DTYPES:
            raise UserInputError(f"input {name!r}: {tensor.dtype} is not one of {', '.join(DTYPES.values())}")
        if tensor.ndim == 0:
            raise UserInputError(f"input {name!r}: a scalar; inputs are batches (first axis: samples)")
        if tensor.dtype.is_floating_point and not torch.isfinite(tensor).all():
            raise UserInputError(f"input {name!r}: the example holds NaN or infinity")
        tensors.append(tensor.contiguous())
    if not tensors:
        raise UserInputError("example_inputs: no inputs given")
    return names, tuple(tensors)


def declared_dims(names: list[str], dynamic_dims: Mapping[str, Mapping[int, Any]] | None) -> Dims:
    """``dynamic_dims`` ({input: {axis: name | (name, min, max)}}), with axis 0 of every input the batch dim."""
    dims = Dims()
    for name, axes in (dynamic_dims or {}).items():
        if name not in names:
            raise UserInputError(f"dynamic_dims: {name!r} is not an input (inputs: {', '.join(names)})")
        for axis, dim in axes.items():
            dims.add(name, int(axis), dim, f"dynamic_dims[{name!r}][{axis}]")
    for name in names:  # the runtime batches along axis 0: it is dynamic whether declared or not
        dims.axes.setdefault(name, {}).setdefault(0, BATCH)
        dims.bounds.setdefault(dims.axes[name][0], (1, None))
    batch = {dims.axes[n][0] for n in names}
    if len(batch) != 1:
        raise UserInputError(f"dynamic_dims: axis 0 of every input is the one batch dim, not {sorted(batch)}")
    return dims


def check_examples(names: list[str], tensors: tuple[torch.Tensor, ...], dims: Dims) -> None:
    """Every declared axis exists, a dim has one size across the inputs that share it, within its range."""
    sizes: dict[str, int] = {}
    for name, tensor in zip(names, tensors, strict=True):
        for axis, dim in dims.axes.get(name, {}).items():
            if not 0 <= axis < tensor.ndim:
                raise UserInputError(f"dynamic_dims[{name!r}]: axis {axis} of a rank-{tensor.ndim} input")
            size = int(tensor.shape[axis])
            if sizes.setdefault(dim, size) != size:
                raise UserInputError(f"dim {dim!r}: {sizes[dim]} in one input and {size} in {name!r}")
            low, high = dims.bounds[dim]
            if size < low or (high is not None and size > high):
                raise UserInputError(f"input {name!r}: {dim} = {size} is outside its range ({low}, {high})")


def tensor_specs(names: list[str], tensors: tuple[torch.Tensor, ...], dims: Dims) -> tuple[TensorSpec, ...]:
    return tuple(
        TensorSpec(
            name,
            tuple(dims.axes.get(name, {}).get(axis, int(size)) for axis, size in enumerate(tensor.shape)),
            DTYPES[tensor.dtype],
        )
        for name, tensor in zip(names, tensors, strict=True)
    )


def value_ranges(
    names: list[str], tensors: tuple[torch.Tensor, ...], declared: Mapping[str, tuple[Any, Any]] | None
) -> dict[str, tuple[float, float]]:
    """Per input, the values random check inputs are drawn from: the declared range, else the examples' own."""
    ranges: dict[str, tuple[float, float]] = {}
    for name, tensor in zip(names, tensors, strict=True):
        if declared and name in declared:
            low, high = declared[name]
            if not low <= high:
                raise UserInputError(f"value range of {name!r}: {low} > {high}")
            ranges[name] = (float(low), float(high))
        elif tensor.numel():
            ranges[name] = (float(tensor.min()), float(tensor.max()))
        else:
            ranges[name] = (0.0, 1.0)
    unknown = [n for n in (declared or {}) if n not in names]
    if unknown:
        raise UserInputError(f"value range of {unknown[0]!r}: not an input (inputs: {', '.join(names)})")
    return ranges


# --- the command line's declarations ----------------------------------------------------------------


def parse_input(text: str) -> tuple[str, str, list[str]]:
    """``NAME:DTYPE[DIMS]`` -> (name, dtype, dims as written): ``x:float32[batch,3,32,32]``."""
    match = _INPUT.match(text.replace(" ", ""))
    if not match:
        raise UserInputError(f"--input {text!r}: expected NAME:DTYPE[DIMS], e.g. x:float32[batch,3,32,32]")
    dtype = match["dtype"]
    if dtype not in TORCH_DTYPES:
        raise UserInputError(f"--input {text!r}: dtype {dtype!r} is not one of {', '.join(TORCH_DTYPES)}")
    dims = [d for d in match["dims"].split(",") if d]
    if not dims or not all((d.isdigit() and int(d) > 0) or _NAME.match(d) for d in dims):
        raise UserInputError(f"--input {text!r}: dims are positive sizes or names, e.g. [batch,seq] or [batch,13]")
    return match["name"], dtype, dims


def parse_range(text: str, option: str) -> tuple[str, int, int]:
    """``NAME=LOW:HIGH`` (inclusive) -> (name, low, high)."""
    match = _RANGE.match(text.replace(" ", ""))
    if not match or int(match["low"]) > int(match["high"]):
        raise UserInputError(f"{option} {text!r}: expected NAME=LOW:HIGH with LOW <= HIGH, e.g. seq=1:128")
    return match["name"], int(match["low"]), int(match["high"])


def declared_inputs(
    inputs: Sequence[str], dim_ranges: Sequence[str], values: Sequence[str]
) -> tuple[dict[str, dict[int, Any]], tuple[torch.Tensor, ...], list[str], dict[str, tuple[int, int]]]:
    """From ``--input``/``--dim``/``--values``: (dynamic_dims, example tensors, names, value ranges). Examples are
    random: floats standard normal, integers within ``--values`` (required for integer inputs), bools random."""
    if not inputs:
        raise UserInputError("MODULE:FACTORY needs --input NAME:DTYPE[DIMS] for each input of forward")
    bounds = {name: (low, high) for name, low, high in (parse_range(t, "--dim") for t in dim_ranges)}
    ranges = {name: (low, high) for name, low, high in (parse_range(t, "--values") for t in values)}
    generator = torch.Generator().manual_seed(0)
    dynamic: dict[str, dict[int, Any]] = {}
    tensors, names = [], []
    for text in inputs:
        name, dtype, dims = parse_input(text)
        if name in names:
            raise UserInputError(f"--input {text!r}: {name!r} is declared twice")
        shape = []
        for axis, dim in enumerate(dims):
            if dim.isdigit():
                shape.append(int(dim))
                continue
            low, high = bounds.get(dim, (1, None))
            dynamic.setdefault(name, {})[axis] = (dim, low, high)
            size = max(DEFAULT_SIZES.get(dim, DEFAULT_SIZE), low, 2)
            shape.append(size if high is None else min(size, high))
        torch_dtype = TORCH_DTYPES[dtype]
        if torch_dtype.is_floating_point:
            tensor = torch.randn(shape, generator=generator, dtype=torch_dtype)
        elif torch_dtype == torch.bool:
            tensor = torch.ones(shape, dtype=torch.bool)
        else:
            if name not in ranges:
                raise UserInputError(
                    f"--input {name}: an {dtype} input needs its valid values: --values {name}=LOW:HIGH"
                )
            low, high = ranges[name]
            tensor = torch.randint(low, high + 1, shape, generator=generator, dtype=torch_dtype)
        names.append(name)
        tensors.append(tensor)
    unknown = [n for n in bounds if not any(n == d[0] for axes in dynamic.values() for d in axes.values())]
    if unknown:
        raise UserInputError(f"--dim {unknown[0]}: no --input names that dim")
    return dynamic, tuple(tensors), names, ranges
