"""Open Inference Protocol (v2) tensors: decode a request (JSON data or the binary tensor extension) into
arrays checked against the model's inputs, and encode outputs. Every refusal is a :class:`ProtocolError`
with the HTTP status the protocol gives it."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import orjson

from torchzoo.core.tensor_spec import TensorSpec

#: v2 datatypes this server reads and writes, and their numpy types
DATATYPES: dict[str, np.dtype] = {
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "INT64": np.dtype("<i8"),
    "INT32": np.dtype("<i4"),
    "UINT8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
TO_DATATYPE = {dtype.newbyteorder("="): name for name, dtype in DATATYPES.items()}
HEADER_LENGTH = "inference-header-content-length"
T = TypeVar("T")


class ProtocolError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class InferRequest:
    id: str | None
    arrays: tuple[np.ndarray, ...]
    outputs: list[str] | None  # requested output names (None: all)
    binary_outputs: set[str]  # outputs to return as binary data


def loads(data: bytes) -> Any:
    """JSON with orjson (8x faster than ``json`` on a 784-float tensor, the bulk of a JSON request's cost);
    what only ``json`` reads (NaN and Infinity literals, a number past float64) is read by ``json``, so that
    the refusal that follows names the value rather than calling the body invalid JSON."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def split_body(body: bytes, header_length: str | None) -> tuple[dict[str, Any], bytes]:
    """The JSON header and the binary part of a request body (binary tensor extension)."""
    if header_length is None:
        json_part, binary = body, b""
    else:
        try:
            length = int(header_length)
        except ValueError:
            raise ProtocolError("Inference-Header-Content-Length is not a number") from None
        if not 0 <= length <= len(body):
            raise ProtocolError(f"Inference-Header-Content-Length {length} is outside the body ({len(body)} bytes)")
        json_part, binary = body[:length], body[length:]
    try:
        request = loads(json_part)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an integer past Python's digit limit
        reason = "" if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError) else f" ({exc})"
        raise ProtocolError(f"the request body is not valid JSON{reason}") from None
    except RecursionError:
        raise ProtocolError("the request body is nested too deeply") from None
    if not isinstance(request, dict):
        raise ProtocolError("the request body must be a JSON object")
    return request, binary


def decode_request(
    request: dict[str, Any], binary: bytes, inputs: list[TensorSpec], outputs: list[str]
) -> InferRequest:
    """The request's tensors as arrays in the model's input order, each checked against its spec."""
    given = request.get("inputs")
    if not isinstance(given, list) or not given:
        raise ProtocolError("'inputs' must be a non-empty list of tensors")
    if not all(isinstance(tensor, dict) and isinstance(tensor.get("name"), str) for tensor in given):
        raise ProtocolError("each input tensor must be an object with a 'name'")
    by_name = match_inputs([tensor["name"] for tensor in given], given, inputs)
    offset = 0
    arrays = []
    for spec in inputs:
        array, offset = _decode_tensor(by_name[spec.name], spec, binary, offset)
        arrays.append(array)
    if offset != len(binary):
        raise ProtocolError(f"{len(binary) - offset} bytes of binary data are not claimed by any input")
    check_batch(arrays)
    return InferRequest(
        id=_request_id(request),
        arrays=tuple(arrays),
        outputs=_requested(request, outputs),
        binary_outputs=_binary_outputs(request, outputs),
    )


def match_inputs(names: list[str], tensors: list[T], inputs: list[TensorSpec]) -> dict[str, T]:
    """The given tensors by input name: each of the model's inputs exactly once, nothing else."""
    by_name: dict[str, T] = {}
    for name, tensor in zip(names, tensors, strict=True):
        if name in by_name:
            raise ProtocolError(f"input '{name}' is given twice")
        by_name[name] = tensor
    expected = [spec.name for spec in inputs]
    unknown = sorted(set(by_name) - set(expected))
    if unknown:
        raise ProtocolError(f"unknown input '{unknown[0]}'; the model's inputs are {', '.join(expected)}")
    missing = [name for name in expected if name not in by_name]
    if missing:
        raise ProtocolError(f"missing input '{missing[0]}'")
    return by_name


def check_outputs(names: list[str], outputs: list[str]) -> None:
    """Requested output names are the model's."""
    unknown = [n for n in names if n not in outputs]
    if unknown:
        raise ProtocolError(f"unknown output '{unknown[0]}'; the model's outputs are {', '.join(outputs)}")


def _decode_tensor(tensor: dict[str, Any], spec: TensorSpec, binary: bytes, offset: int) -> tuple[np.ndarray, int]:
    name = spec.name
    shape = tensor.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
        raise ProtocolError(f"input '{name}': 'shape' must be a list of integers")
    count = check_header(spec, tensor.get("datatype"), shape)
    itemsize = DATATYPES[spec.datatype].itemsize
    parameters = tensor.get("parameters") or {}
    size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or size != count * itemsize:
            raise ProtocolError(f"input '{name}': binary_data_size {size!r}; shape {shape} needs {count * itemsize}")
        if offset + size > len(binary):
            raise ProtocolError(f"input '{name}': the body holds {len(binary) - offset} of its {size} binary bytes")
        return from_raw(spec, binary[offset : offset + size], shape), offset + size
    array = from_values(tensor.get("data"), spec)
    if array.size != count:
        raise ProtocolError(f"input '{name}': {array.size} values; shape {shape} needs {count}")
    return checked(spec, array.reshape(shape)), offset  # nested lists are accepted too, read row-major


def check_header(spec: TensorSpec, datatype: object, shape: list[int]) -> int:
    """A tensor's datatype and shape against the model's input; returns its element count."""
    name = spec.name
    if datatype != spec.datatype:
        raise ProtocolError(f"input '{name}': datatype {datatype!r}; the model takes {spec.datatype}")
    if len(shape) != len(spec.dims):
        raise ProtocolError(f"input '{name}': shape {shape} has rank {len(shape)}; the model takes {list(spec.dims)}")
    for got, want in zip(shape, spec.dims, strict=True):
        if got < 1 or (want != -1 and got != want):
            raise ProtocolError(f"input '{name}': shape {shape}; the model takes {list(spec.dims)} (-1: any size)")
    return math.prod(shape)


def from_raw(spec: TensorSpec, raw: bytes, shape: list[int]) -> np.ndarray:
    """A tensor sent as raw little-endian bytes (the binary extension, gRPC's raw contents), checked."""
    dtype = DATATYPES[spec.datatype]
    count = math.prod(shape)
    if len(raw) != count * dtype.itemsize:
        raise ProtocolError(f"input '{spec.name}': {len(raw)} bytes; shape {shape} needs {count * dtype.itemsize}")
    return checked(spec, np.frombuffer(raw, dtype=dtype, count=count).reshape(shape))


def checked(spec: TensorSpec, array: np.ndarray) -> np.ndarray:
    """A decoded input as the runtime takes it: finite, booleans stored as 0 or 1, native byte order, contiguous."""
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise ProtocolError(
            f"input '{spec.name}' holds NaN or infinite values (or values past {spec.datatype}'s range)"
        )
    if array.dtype.kind == "b" and array.size and array.view(np.uint8).max() > 1:
        raise ProtocolError(f"input '{spec.name}': BOOL bytes must be 0 or 1")
    return np.ascontiguousarray(array.astype(DATATYPES[spec.datatype].newbyteorder("="), copy=False))


def check_batch(arrays: list[np.ndarray]) -> None:
    batch = {a.shape[0] for a in arrays}
    if len(batch) != 1:
        raise ProtocolError(f"inputs disagree on the batch size: {sorted(batch)}")


#: JSON number kinds (numpy's, of the array numpy makes of the data) each datatype accepts
_JSON_KINDS = {"FP32": "iuf", "FP64": "iuf", "INT64": "iu", "INT32": "iu", "UINT8": "iu", "BOOL": "b"}


def from_values(data: Any, spec: TensorSpec) -> np.ndarray:
    """A tensor's JSON ``data`` as an array of its datatype: numbers of that kind only (no strings, no floats for
    an integer input, no integer outside its range), never a silent cast."""
    refusal = ProtocolError(f"input '{spec.name}': 'data' must be numbers of datatype {spec.datatype}")
    if data is None:
        raise ProtocolError(f"input '{spec.name}' has neither 'data' nor binary data")
    try:
        values = np.asarray(data)
    except (TypeError, ValueError, OverflowError, RecursionError):
        raise refusal from None
    if values.dtype.kind not in _JSON_KINDS[spec.datatype]:
        raise refusal
    dtype = DATATYPES[spec.datatype]
    if dtype.kind in "iu" and values.size:
        info = np.iinfo(dtype)
        if values.min() < info.min or values.max() > info.max:
            raise ProtocolError(f"input '{spec.name}': values outside {spec.datatype}'s range")
    with np.errstate(over="ignore"):  # a float past FP32's range becomes infinite: refused as such
        return values.astype(dtype)


def _request_id(request: dict[str, Any]) -> str | None:
    value = request.get("id")
    if value is not None and not isinstance(value, str):
        raise ProtocolError("'id' must be a string")
    if value is not None and not _is_unicode(value):
        raise ProtocolError("'id' holds a lone surrogate; it must be valid Unicode")
    return value


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _requested(request: dict[str, Any], outputs: list[str]) -> list[str] | None:
    wanted = request.get("outputs")
    if wanted is None:
        return None
    if not isinstance(wanted, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str) for o in wanted):
        raise ProtocolError("'outputs' must be a list of objects with a 'name'")
    names = [o["name"] for o in wanted]
    check_outputs(names, outputs)
    return names


def _binary_outputs(request: dict[str, Any], outputs: list[str]) -> set[str]:
    parameters = request.get("parameters") or {}
    everything = isinstance(parameters, dict) and parameters.get("binary_data_output") is True
    chosen = set(outputs) if everything else set()
    for wanted in request.get("outputs") or []:
        parameters = wanted.get("parameters")
        if not isinstance(parameters, dict):
            continue
        if "classification" in parameters:
            raise ProtocolError(f"output '{wanted['name']}': the classification extension is not supported here")
        flag = parameters.get("binary_data")
        if flag is True:
            chosen.add(wanted["name"])
        elif flag is False:
            chosen.discard(wanted["name"])
    return chosen


def encode_response(
    model: str, version: str, request: InferRequest, names: list[str], values: list[np.ndarray]
) -> tuple[bytes, dict[str, str]]:
    """The response body and its extra headers (binary outputs follow the JSON header, in output order)."""
    wanted = request.outputs or names
    chunks: list[bytes] = []
    tensors = []
    for name in wanted:
        array = np.ascontiguousarray(values[names.index(name)])
        datatype = TO_DATATYPE.get(array.dtype.newbyteorder("="))
        if datatype is None:
            raise ProtocolError(f"output '{name}' has dtype {array.dtype}, which this server cannot send", 500)
        tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        if name in request.binary_outputs:
            raw = array.astype(DATATYPES[datatype], copy=False).tobytes()
            tensor["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            tensor["data"] = array.reshape(-1).tolist()
        tensors.append(tensor)
    body: dict[str, Any] = {"model_name": model, "model_version": version, "outputs": tensors}
    if request.id is not None:
        body["id"] = request.id
    header = orjson.dumps(body)  # outputs are finite: the batch's run checked them
    if not chunks:
        return header, {"content-type": "application/json"}
    return header + b"".join(chunks), {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(len(header)),
    }
