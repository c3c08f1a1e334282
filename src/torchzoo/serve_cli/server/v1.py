"""KServe v1 ``:predict`` instances, read as values only: a name (a string) for a names model, a row of numbers
(or one number, for a one-feature model) for a features model, a base64 PNG/JPEG (a string, or ``{"b64": ...}``
as KServe writes binary data) for an image model, and for a model on raw tensors (a packaged model of one's
own) an object per sample of its inputs by name, each without the batch axis (``{"ids": [3, 1, 4], "mask": [1,
1, 0]}``, TensorFlow Serving's row format; the samples of one request share their shapes). A string is never a
path on the server: files are the command line's convenience, not the network's.

Images are decoded in worker threads, at most ``DECODE_SLOTS`` at a time, each at most ``MAX_DECODED_PIXELS``
(a JPEG counts at the reduced scale Pillow decodes it at), which bounds the memory decoding can take."""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

import numpy as np

from torchzoo.core.image_codec import decode_image
from torchzoo.core.limits import MAX_IMAGE_BYTES
from torchzoo.serve_cli.predictor import Predictor
from torchzoo.serve_cli.server.protocol import ProtocolError
from torchzoo.serve_cli.tensor_inputs import stack_rows

#: images decoded at once, server-wide (one per core of the machines this was measured on)
DECODE_SLOTS = 2
#: 4096x4096; the worst case measured (an RGBA PNG for an RGB model) peaks at +261 MiB while it decodes
MAX_DECODED_PIXELS = 4096 * 4096
DEFAULT_TOP_K, DEFAULT_THRESHOLD = 3, 0.5


def options(parameters: Any) -> tuple[int, float]:
    """``parameters.top_k`` and ``parameters.threshold``, checked; anything but an object means the defaults."""
    if not isinstance(parameters, dict):
        return DEFAULT_TOP_K, DEFAULT_THRESHOLD
    top_k, threshold = parameters.get("top_k", DEFAULT_TOP_K), parameters.get("threshold", DEFAULT_THRESHOLD)
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
        raise ProtocolError("'parameters.top_k' must be a positive integer")
    if not isinstance(threshold, int | float) or isinstance(threshold, bool) or not 0 <= threshold <= 1:
        raise ProtocolError("'parameters.threshold' must be a number in [0, 1]")
    return top_k, float(threshold)


def instances_of(header: dict[str, Any]) -> list[Any]:
    instances = header.get("instances")
    if not isinstance(instances, list) or not instances:
        raise ProtocolError("'instances' must be a non-empty list")
    return instances


def model_inputs(instances: list[Any], predictor: Predictor) -> list[Any] | dict[str, np.ndarray]:
    """The instances as the runtime's ``predict`` takes them (names, rows, decoded pixels ``[1, C, H, W]``, or
    a raw-tensor model's inputs by name)."""
    preprocessing = predictor.manifest["preprocessing"]
    kind = preprocessing["kind"]
    if kind == "names_one_hot":
        return [_name(item, i) for i, item in enumerate(instances)]
    if kind == "features":
        return [_row(item, i, int(preprocessing["n_features"])) for i, item in enumerate(instances)]
    if kind == "image":
        return [_image(item, i, preprocessing) for i, item in enumerate(instances)]
    if kind == "tensors":
        return stack_rows(instances, predictor.manifest["inputs"], "instances")
    raise ProtocolError(f"v1 :predict does not read this model's inputs ({kind}); use v2 /infer")


def _name(item: Any, index: int) -> str:
    if not isinstance(item, str):
        raise ProtocolError(f"instances[{index}]: this model takes names (strings)")
    return item


def _row(item: Any, index: int, n_features: int) -> list[Any] | int | float:
    """One sample: ``n_features`` finite numbers (a plain number when the model takes one feature)."""
    values = [item] if n_features == 1 and not isinstance(item, list) else item
    if not isinstance(values, list) or len(values) != n_features:
        raise ProtocolError(f"instances[{index}]: a row of {n_features} numbers")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ProtocolError(f"instances[{index}]: a row of {n_features} numbers, not {type(value).__name__}")
        try:
            finite = math.isfinite(value)
        except OverflowError:  # an integer past float range
            finite = False
        if not finite:
            raise ProtocolError(f"instances[{index}]: values must be finite numbers within float range")
    return item


def _image(item: Any, index: int, preprocessing: dict[str, Any]) -> np.ndarray:
    encoded = item.get("b64") if isinstance(item, dict) else item
    if not isinstance(encoded, str):
        raise ProtocolError(f"instances[{index}]: an image must be base64 PNG/JPEG (a string or {{'b64': ...}})")
    if len(encoded) > MAX_IMAGE_BYTES * 4 // 3 + 4:
        raise ProtocolError(f"instances[{index}]: the image is larger than {MAX_IMAGE_BYTES:,} bytes", 413)
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(f"instances[{index}]: not valid base64") from None
    return decode_image(data, preprocessing, f"instances[{index}]", MAX_DECODED_PIXELS)[None]
