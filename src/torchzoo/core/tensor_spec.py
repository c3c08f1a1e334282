"""One model input or output, as every room describes it: training declares it, export writes it to the
manifest, the runtime and the server read it back. Symbolic dims (``"batch"``, ``"seq"``) are dynamic axes.
Also: valid example inputs made from a manifest's specs (the server's warm-up, ``torchzoo bench``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: the Open Inference Protocol's datatype of each manifest dtype
DATATYPES = {"float32": "FP32", "float64": "FP64", "int64": "INT64", "int32": "INT32", "uint8": "UINT8", "bool": "BOOL"}


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int | str, ...]
    dtype: str = "float32"
    description: str = ""

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> TensorSpec:
        """A manifest's ``inputs``/``outputs`` entry (already validated by the manifest schema)."""
        return cls(entry["name"], tuple(entry["shape"]), entry.get("dtype", "float32"), entry.get("description", ""))

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "shape": list(self.shape)}

    @property
    def datatype(self) -> str:
        """The protocol's datatype (``FP32``...)."""
        return DATATYPES.get(self.dtype, "FP32")

    @property
    def dims(self) -> tuple[int, ...]:
        """The shape as the protocol writes it: -1 for a dynamic axis."""
        return tuple(-1 if isinstance(d, str) else int(d) for d in self.shape)

    def metadata(self) -> dict[str, Any]:
        """The protocol's tensor metadata."""
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.dims)}


def dim_bounds(manifest: dict[str, Any]) -> dict[str, tuple[int, int | None]]:
    """The ``(min, max)`` the export checked each named dim at (``origin.dim_bounds``, ``{name: [low, high or
    null]}``, as :func:`torchzoo.package` writes them; descriptive JSON, so read defensively: anything else means
    no bound); max None: unbounded."""
    origin = manifest.get("origin")
    declared = origin.get("dim_bounds") if isinstance(origin, dict) else None
    bounds: dict[str, tuple[int, int | None]] = {}
    for name, pair in (declared if isinstance(declared, dict) else {}).items():
        if isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], int) and pair[0] >= 1:
            bounds[name] = (pair[0], pair[1] if isinstance(pair[1], int) and pair[1] >= pair[0] else None)
    return bounds


def dim_sizes(manifest: dict[str, Any], prefer: int = 1) -> dict[str, int]:
    """A size for each dynamic dim of the manifest's inputs: ``prefer``, within :func:`dim_bounds`."""
    bounds = dim_bounds(manifest)
    sizes: dict[str, int] = {}
    for spec in manifest["inputs"]:
        for dim in spec["shape"]:
            if isinstance(dim, str) and dim not in sizes:
                low, high = bounds.get(dim, (1, None))
                sizes[dim] = max(low, prefer if high is None else min(prefer, high))
    return sizes


def smallest_shape(manifest: dict[str, Any], spec: dict[str, Any]) -> list[int]:
    """The smallest shape the input ``spec`` takes: each named dim at its declared minimum (1 unless declared)."""
    sizes = dim_sizes(manifest, prefer=1)
    return [d if isinstance(d, int) else sizes[d] for d in spec["shape"]]


def fill_value(manifest: dict[str, Any], name: str) -> float:
    """A value valid for every element of input ``name``: 0, unless the export recorded the input's value range
    (``origin.value_ranges``, ``{name: [low, high]}``) and 0 is outside it (ids that start at 1): then its low end."""
    origin = manifest.get("origin")
    ranges = origin.get("value_ranges") if isinstance(origin, dict) else None
    pair = ranges.get(name) if isinstance(ranges, dict) else None
    if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, int | float) for v in pair)):
        return 0.0
    low, high = float(pair[0]), float(pair[1])
    return 0.0 if low <= 0.0 <= high or not low <= high else low


def example_arrays(
    manifest: dict[str, Any], batch: int, prefer: int = 1, rng: np.random.Generator | None = None
) -> list[np.ndarray]:
    """Valid inputs for the manifest's model: ``batch`` samples, dynamic dims at :func:`dim_sizes`; every element
    :func:`fill_value` (zeros: valid ids, False a valid flag), or with ``rng`` floats drawn from a standard normal."""
    sizes = {**dim_sizes(manifest, prefer), str(manifest["inputs"][0]["shape"][0]): batch}
    arrays = []
    for spec in manifest["inputs"]:
        shape = [sizes[d] if isinstance(d, str) else int(d) for d in spec["shape"]]
        dtype = np.dtype(spec.get("dtype", "float32"))
        if rng is not None and dtype.kind == "f":
            arrays.append(rng.standard_normal(shape).astype(dtype))
        elif dtype == np.bool_:
            arrays.append(np.zeros(shape, dtype))
        else:
            arrays.append(np.full(shape, fill_value(manifest, spec["name"]), dtype))
    return arrays
