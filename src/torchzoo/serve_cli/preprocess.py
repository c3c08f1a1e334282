"""Turn what a person has at hand into the model's input arrays, as the manifest's preprocessing says.

Inputs by preprocessing kind (strings from the command line, or Python objects through the API):

- ``names_one_hot``: names (strings); folded to ASCII, refused if a character cannot be folded.
- ``image``: paths to image files (PNG/JPEG, any size or mode: converted and resized as the manifest
  says) or to a ``.npy`` batch: ``uint8`` pixels ``[n, H, W]`` / ``[n, C, H, W]`` (normalized here), or
  float32 already in the model's input shape ``[n, ...]`` (used as is). Through the API, numpy arrays
  are accepted too, with the same two meanings.
- ``features``: numbers: each input is one row, its values separated by commas (``"13.2,1.78,..."``)
  or a path to a CSV file with one row per sample (a header row of names is skipped). A model on one
  feature also takes plain numbers (``"5"``), one sample each.
- ``tensors`` (a user's own model, no preprocessing): arrays or array files, checked against the manifest's
  inputs (:mod:`torchzoo.serve_cli.tensor_inputs`).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from torchzoo.core.errors import UserInputError
from torchzoo.core.feature_codec import standardize
from torchzoo.core.image_codec import load_image, normalize
from torchzoo.core.limits import MAX_CELL_CHARS, MAX_CSV_BYTES, MAX_CSV_ROWS, MAX_INPUTS
from torchzoo.core.safe_io import read_input_file
from torchzoo.core.text_codec import encode_names, printable
from torchzoo.serve_cli.array_files import read_npy
from torchzoo.serve_cli.tensor_inputs import sample_labels, tensors

Prepared = tuple[tuple[np.ndarray, ...], list[str]]  # model inputs, and one display label per sample
Preprocessor = Callable[[Sequence[Any], dict[str, Any], list[dict[str, Any]]], Prepared]


def names_one_hot(inputs: Sequence[Any], params: dict[str, Any], specs: list[dict[str, Any]]) -> Prepared:
    if not all(isinstance(x, str) for x in inputs):
        raise UserInputError("this model takes names (strings)")
    letters = encode_names(list(inputs), alphabet=params["alphabet"], max_length=params["max_length"])
    return (letters,), list(inputs)


def _sources(item: Any, count: int) -> list[str]:
    return sample_labels("array" if isinstance(item, np.ndarray) else str(item), count)


def _sample_shape(specs: list[dict[str, Any]]) -> list[int]:
    return [int(s) for s in specs[0]["shape"][1:]]


def _array_batch(array: np.ndarray, params: dict[str, Any], sample_shape: list[int], where: str) -> np.ndarray:
    """A numpy batch: uint8 pixels to normalize, or float32 already shaped like the model's input."""
    channels = 1 if params["mode"] == "L" else 3
    height, width = params["size"]
    if array.dtype == np.uint8:
        per_image = channels * height * width
        if array.ndim < 2 or array[0].size != per_image:
            raise UserInputError(
                f"{where}: uint8 batch of shape {list(array.shape)}; expected [n, {channels}, {height}, {width}]"
                + (f" or [n, {height}, {width}]" if channels == 1 else "")
            )
        return normalize(array, params, sample_shape)
    if array.dtype.kind == "f":
        if list(array.shape[1:]) != sample_shape:
            raise UserInputError(
                f"{where}: float batch of shape {list(array.shape)}; expected [n, {', '.join(map(str, sample_shape))}]"
            )
        if not np.all(np.isfinite(array)):
            raise UserInputError(f"{where}: the batch holds NaN or infinite values")
        return np.ascontiguousarray(array, dtype=np.float32)
    raise UserInputError(f"{where}: arrays must be uint8 pixels or float32 model input, not {array.dtype}")


def image(inputs: Sequence[Any], params: dict[str, Any], specs: list[dict[str, Any]]) -> Prepared:
    sample_shape = _sample_shape(specs)
    batches: list[np.ndarray] = []
    sources: list[str] = []
    for item in inputs:
        if isinstance(item, np.ndarray):
            batches.append(_array_batch(item, params, sample_shape, "array"))
        elif isinstance(item, str | Path) and str(item).lower().endswith(".npy"):
            array = read_npy(item)
            batches.append(_array_batch(array, params, sample_shape, printable(str(item))))
        elif isinstance(item, str | Path):
            batches.append(normalize(load_image(item, params)[None], params, sample_shape))
        else:
            raise UserInputError("this model takes image files (PNG/JPEG), .npy batches or numpy arrays")
        sources += _sources(item, len(batches[-1]))
    if not batches or not sources:
        raise UserInputError("no images given")
    return (np.concatenate(batches),), sources


def _parse_number(text: str, where: str) -> float:
    if len(text) > MAX_CELL_CHARS:
        raise UserInputError(f"{where}: a value of {len(text):,} characters is not a number")
    try:
        value = float(text)
    except ValueError:
        raise UserInputError(f"{where}: {text.strip()[:30]!r} is not a number") from None
    if not math.isfinite(value):
        raise UserInputError(f"{where}: {text.strip()[:30]!r} is not a finite number")
    return value


def _csv_rows(path: Path, n_features: int) -> list[list[float]]:
    """Rows of a CSV file (UTF-8, with or without a byte-order mark). Blank lines are skipped; a first row
    with no number in it is a header; every other row must be ``n_features`` finite numbers, or it is an error
    naming the row (never dropped)."""
    shown = printable(str(path))
    data = read_input_file(path, MAX_CSV_BYTES, "CSV")
    try:
        text = data.decode("utf-8-sig")
        raw = []
        for row in csv.reader(io.StringIO(text, newline="")):
            if any(cell.strip() for cell in row):
                raw.append(row)
            if len(raw) > MAX_CSV_ROWS + 1:
                raise UserInputError(f"{shown} has more than {MAX_CSV_ROWS:,} rows; split it")
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UserInputError(f"{shown} is not a readable UTF-8 CSV file ({type(exc).__name__})") from None
    if raw and not any(is_number(cell) for cell in raw[0]):
        raw = raw[1:]  # a header row
    if not raw:
        raise UserInputError(f"{shown} has no data rows")
    rows = []
    for number, row in enumerate(raw, start=1):
        if len(row) != n_features:
            raise UserInputError(f"{shown} row {number}: {len(row)} columns; the model takes {n_features}")
        rows.append([_parse_number(cell, f"{shown} row {number}") for cell in row])
    return rows


def is_number(cell: str) -> bool:
    """Whether a CSV cell reads as a number (a first row with none is a header)."""
    try:
        float(cell[:MAX_CELL_CHARS])
    except ValueError:
        return False
    return True


def features(inputs: Sequence[Any], params: dict[str, Any], specs: list[dict[str, Any]]) -> Prepared:
    n = int(params["n_features"])
    names = ", ".join(params.get("feature_names", []))
    rows: list[list[float]] = []
    sources: list[str] = []
    for item in inputs:
        before = len(rows)
        if isinstance(item, int | float | np.ndarray | list | tuple) and not isinstance(item, bool):
            values = np.asarray(item, dtype=np.float64).reshape(-1, n) if np.size(item) % n == 0 else None
            if values is None:
                raise UserInputError(f"{np.size(item)} values given; the model takes {n} per sample ({names})")
            if not np.all(np.isfinite(values)):
                raise UserInputError("the input holds NaN or infinite values")
            rows.extend(values.tolist())
        elif isinstance(item, Path) or (isinstance(item, str) and item.lower().endswith((".csv", ".txt"))):
            rows.extend(_csv_rows(Path(item), n))
        elif isinstance(item, str):
            cells = item.replace(";", ",").split(",")
            if len(cells) != n:
                raise UserInputError(f"{item[:40]!r} has {len(cells)} values; the model takes {n} ({names})")
            rows.append([_parse_number(c, "input") for c in cells])
        else:
            raise UserInputError(f"this model takes numbers ({names}), comma-separated rows or a CSV file")
        sources += _sources(item, len(rows) - before)
    if not rows:
        raise UserInputError("no inputs given")
    with np.errstate(over="ignore", invalid="ignore"):
        model_input = standardize(np.asarray(rows), params)
    if not np.all(np.isfinite(model_input)):
        raise UserInputError(f"the input holds values beyond the range of the model's {params['dtype']} input")
    return (model_input,), sources


PREPROCESSORS: dict[str, Preprocessor] = {
    "names_one_hot": names_one_hot,
    "image": image,
    "features": features,
    "tensors": tensors,
}


def preprocess(inputs: Sequence[Any], params: dict[str, Any], specs: list[dict[str, Any]]) -> Prepared:
    """Model-ready arrays for ``inputs`` and a display label per sample; ``specs``: the manifest's inputs."""
    kind = params.get("kind")
    if kind not in PREPROCESSORS:
        raise UserInputError(f"this runtime does not know the preprocessing '{kind}'; upgrade torchzoo")
    if len(inputs) == 0:
        raise UserInputError("no inputs given")
    if len(inputs) > MAX_INPUTS:
        raise UserInputError(f"{len(inputs):,} inputs in one call; at most {MAX_INPUTS:,}")
    return PREPROCESSORS[kind](inputs, params, specs)
