"""Raw tensors (preprocessing ``tensors``: a user's own model, :func:`torchzoo.package`): what a person or a
program gives, checked against the manifest's inputs and made the model's arrays. Nothing is preprocessed.

- Through the API: one array (a one-input model), a sequence of arrays in input order, or a dict by input name.
  A numpy array has the input's dtype or one numpy casts to it safely within its kind of values (int32 ->
  int64, float32 -> float64, int8 -> float32; never float64 -> float32, float -> int, or to/from bool); nested
  lists of Python numbers are taken when they are of the input's kind (no floats for an integer input, no
  numbers for a bool input) and fit its range.
- From the command line: one ``.npy`` file (a one-input model), one ``.npz`` file whose keys are the input
  names, or ``NAME=FILE.npy`` per input.
- Rows (v1 instances, predict-batch): per-sample dicts ``{input name: values without the batch axis}``,
  stacked by :func:`stack_rows`.

Every input must have the declared rank and fixed sizes and at least one value along each axis, floats must
be finite, and a dynamic dim name (the batch dim among them) has one size across the inputs (:func:`check_dims`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from torchzoo.core.errors import UserInputError
from torchzoo.core.text_codec import printable
from torchzoo.serve_cli.array_files import read_npy, read_npz

Spec = dict[str, Any]
#: array file dtypes read for a tensor input (numbers, booleans); the input's own dtype is checked after
FILE_KINDS = "biuf"
FILE_REFUSAL = "arrays must hold numbers or booleans"
#: numpy kinds of a Python value (nested lists) each kind of input takes
_VALUE_KINDS = {"f": "iuf", "i": "iu", "u": "iu", "b": "b"}
_KIND_NAMES = {"f": "floats", "i": "integers", "u": "integers", "b": "booleans", "U": "strings", "S": "bytes"}


def sample_labels(name: str, count: int) -> list[str]:
    """One display label per sample of a batch called ``name``: ``name`` itself for one, else ``name[i]``."""
    return [name] if count == 1 else [f"{name}[{i}]" for i in range(count)]


def _prefix(where: str) -> str:
    return f"{where}: " if where else ""


def as_array(value: Any, spec: Spec, where: str = "", finite: bool = True) -> np.ndarray:
    """``value`` as the input ``spec`` takes it (dtype, rank, fixed sizes, and unless ``finite`` is False finite
    floats), contiguous and in native byte order; anything else is a one-line UserInputError naming the input."""
    name, dtype = spec["name"], np.dtype(spec["dtype"])
    head = f"{_prefix(where)}input {name!r}"
    if isinstance(value, np.ndarray):
        given = value.dtype
        if given != dtype and (
            given.hasobject
            or given.fields is not None
            or not np.can_cast(given, dtype, "safe")
            or (given.kind == "b") != (dtype.kind == "b")
        ):
            raise UserInputError(
                f"{head}: {given} values; the model takes {dtype} (numpy does not cast {given} to {dtype} safely: "
                "convert them first)"
            )
        array = value
    else:
        try:
            array = np.asarray(value)
        except (TypeError, ValueError, OverflowError, RecursionError):
            raise UserInputError(f"{head}: not an array of numbers") from None
        if array.dtype.kind not in _VALUE_KINDS[dtype.kind]:
            what = _KIND_NAMES.get(array.dtype.kind, "values of mixed types or lengths")
            raise UserInputError(f"{head}: {what}; the model takes {dtype} values")
        if dtype.kind in "iu" and array.size:
            info = np.iinfo(dtype)
            if array.min() < info.min or array.max() > info.max:
                raise UserInputError(f"{head}: values outside {dtype}'s range")
    shape = spec["shape"]
    if array.ndim != len(shape) or any(
        n < 1 or (isinstance(d, int) and d != n) for d, n in zip(shape, array.shape, strict=False)
    ):
        raise UserInputError(f"{head}: shape {list(array.shape)}; the model takes {dtype} {shape}")
    with np.errstate(over="ignore", invalid="ignore"):  # past float32's range: infinite, refused below
        array = np.ascontiguousarray(array.astype(dtype, copy=False))
    if finite and dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise UserInputError(f"{head} holds NaN or infinite values (or values past {dtype}'s range)")
    return array


def check_dims(arrays: Sequence[np.ndarray], specs: Sequence[Spec]) -> int:
    """Each dynamic dim name (the batch dim among them) has one size across the inputs; returns the batch size."""
    seen: dict[str, tuple[int, str]] = {}
    batch = str(specs[0]["shape"][0])
    for array, spec in zip(arrays, specs, strict=True):
        for dim, size in zip(spec["shape"], array.shape, strict=True):
            if not isinstance(dim, str):
                continue
            first, owner = seen.setdefault(dim, (int(size), spec["name"]))
            if first != size:
                what = "the batch size" if dim == batch else f"the size of dim {dim!r}"
                raise UserInputError(f"inputs disagree on {what}: {owner!r} has {first}, {spec['name']!r} has {size}")
    return int(arrays[0].shape[0])


def _by_name(given: Mapping[str, Any], specs: Sequence[Spec], where: str) -> list[Any]:
    """The values of ``given`` in input order: every input exactly once, nothing else."""
    names = [s["name"] for s in specs]
    unknown = [k for k in given if k not in names]
    if unknown:
        shown = printable(str(unknown[0]), 64)
        raise UserInputError(f"{_prefix(where)}unknown input {shown!r}; the model's inputs are {', '.join(names)}")
    missing = [n for n in names if n not in given]
    if missing:
        raise UserInputError(f"{_prefix(where)}missing input {missing[0]!r}; the model takes {', '.join(names)}")
    return [given[n] for n in names]


def _usage(specs: Sequence[Spec]) -> str:
    names = [s["name"] for s in specs]
    one = "FILE.npy, " if len(names) == 1 else ""
    return f"this model takes tensors: {one}FILE.npz (keys: {', '.join(names)}) or NAME=FILE.npy per input"


def read_files(args: Sequence[str | Path], specs: Sequence[Spec]) -> dict[str, np.ndarray]:
    """The arrays the command line names: ``FILE.npz`` (keys: input names), ``FILE.npy`` for a one-input
    model, or ``NAME=FILE.npy`` per input (NAME an input's name, so a path holding ``=`` is still a path)."""
    names = [s["name"] for s in specs]
    arrays: dict[str, np.ndarray] = {}
    for arg in args:
        text = str(arg)
        name, sep, path = text.partition("=")
        if sep and name in names:
            if name in arrays:
                raise UserInputError(f"input {name!r} is given twice")
            arrays[name] = read_npy(path, FILE_KINDS, FILE_REFUSAL)
        elif len(args) == 1 and text.lower().endswith(".npz"):
            return read_npz(text, FILE_KINDS, FILE_REFUSAL)
        elif len(args) == 1 and len(names) == 1 and text.lower().endswith(".npy"):
            return {names[0]: read_npy(text, FILE_KINDS, FILE_REFUSAL)}
        else:
            raise UserInputError(f"{printable(text, 80)!r}: {_usage(specs)}")
    return arrays


def tensors(inputs: Any, params: dict[str, Any], specs: list[Spec]) -> tuple[tuple[np.ndarray, ...], list[str]]:
    """The preprocessor of ``tensors``: the model's arrays in input order, and one label per sample."""
    if isinstance(inputs, Mapping):
        given, label = dict(inputs), "array"
    elif all(isinstance(item, str | Path) for item in inputs):
        given, label = read_files(inputs, specs), "+".join(printable(str(i), 100) for i in inputs)
    elif len(inputs) == len(specs):
        given, label = {s["name"]: item for s, item in zip(specs, inputs, strict=True)}, "array"
    else:
        names = ", ".join(s["name"] for s in specs)
        raise UserInputError(
            f"{len(inputs)} arrays given; the model takes {len(specs)} ({names}): an array per input, in this "
            "order, or a dict by name"
        )
    arrays = [as_array(value, spec) for value, spec in zip(_by_name(given, specs, ""), specs, strict=True)]
    return tuple(arrays), sample_labels(label, check_dims(arrays, specs))


def stack_rows(
    rows: Sequence[Any], specs: Sequence[Spec], where: str, labels: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """Per-sample dicts ``{input name: values without the batch axis}`` stacked into one batch per input; rows
    whose shapes differ (another sequence length) cannot share a batch and are refused. A row's errors name it
    ``where[i]``, or ``labels[i]`` when given."""
    if not rows:
        raise UserInputError(f"{_prefix(where)}no rows given")
    columns: dict[str, list[np.ndarray]] = {s["name"]: [] for s in specs}
    for index, row in enumerate(rows):
        here = labels[index] if labels is not None else f"{where}[{index}]"
        if not isinstance(row, Mapping):
            names = ", ".join(columns)
            raise UserInputError(f"{here}: an object of the model's inputs by name ({names})")
        for spec, value in zip(specs, _by_name(row, specs, here), strict=True):
            columns[spec["name"]].append(as_array([value], spec, here))
    stacked = {}
    for name, parts in columns.items():
        shapes = sorted({p.shape[1:] for p in parts})
        if len(shapes) > 1:
            raise UserInputError(
                f"{_prefix(where)}rows of input {name!r} differ in shape ({list(shapes[0])} and {list(shapes[1])}); "
                "send them separately"
            )
        stacked[name] = np.concatenate(parts)
    return stacked


def read_table(path: str | Path, specs: Sequence[Spec]) -> dict[str, np.ndarray]:
    """An ``.npz`` of rows (predict-batch's INPUT): one array per input, keyed by its name, row ``i`` of each
    (first axis) being sample ``i``; checked whole (names, dtypes, shapes, one row count) but not for finite
    values, which are each row's own concern."""
    shown = printable(str(path))
    if not str(path).lower().endswith(".npz"):
        raise UserInputError(f"this model takes an .npz file of rows (keys: {', '.join(s['name'] for s in specs)})")
    given = read_npz(path, FILE_KINDS, FILE_REFUSAL)
    values = _by_name(given, specs, shown)
    arrays = [as_array(value, spec, shown, finite=False) for value, spec in zip(values, specs, strict=True)]
    check_dims(arrays, specs)
    return {spec["name"]: array for spec, array in zip(specs, arrays, strict=True)}
