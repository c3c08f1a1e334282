"""One model input or output, as every room describes it: training declares it, export writes it to the
manifest, the runtime and the server read it back. Symbolic dims (``"batch"``, ``"seq"``) are dynamic axes."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

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
