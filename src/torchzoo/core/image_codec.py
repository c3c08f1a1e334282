"""Image preprocessing shared by training and the torch-free runtime (numpy + Pillow only).

A family's manifest ``preprocessing`` for images is::

    {"kind": "image", "mode": "L" | "RGB", "size": [H, W], "scale": 255.0,
     "mean": [per channel], "std": [per channel], "description": "..."}

Pixels (uint8, channel-first ``[n, C, H, W]``, or ``[n, H, W]`` for grey) become model input as
``(pixels / scale - mean) / std`` in float32, reshaped to the model input's per-sample shape (``[784]``,
``[1, 28, 28]``, ``[28, 28]``, ``[3, 32, 32]``...). Training calls :func:`normalize` on its uint8 data, the
runtime calls :func:`load_image` then :func:`normalize`, so both compute the very same numbers.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from torchzoo.core.errors import UserInputError
from torchzoo.core.limits import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS
from torchzoo.core.safe_io import read_input_file
from torchzoo.core.text_codec import printable

MAX_PIXELS = MAX_IMAGE_PIXELS  # 10000x10000 is accepted (and resized); larger is refused before decoding
FORMATS = ["PNG", "JPEG"]  # the only decoders Pillow may use


def image_params(mode: str, size: tuple[int, int], mean: Sequence[float], std: Sequence[float], what: str) -> dict:
    """The manifest's preprocessing entry for an image model."""
    channels = 1 if mode == "L" else 3
    if len(mean) != channels or len(std) != channels:
        raise ValueError(f"mean/std need {channels} values for mode {mode}")
    return {
        "kind": "image",
        "mode": mode,
        "size": list(size),
        "scale": 255.0,
        "mean": [float(m) for m in mean],
        "std": [float(s) for s in std],
        "layout": "channel-first (C, H, W), RGB order; reshaped to the input's per-sample shape",
        "description": what,
    }


def normalize(pixels: np.ndarray, params: dict[str, Any], sample_shape: Sequence[int]) -> np.ndarray:
    """uint8 pixels ``[n, C, H, W]`` (or ``[n, H, W]``) -> float32 ``[n, *sample_shape]``."""
    channels = 1 if params["mode"] == "L" else 3
    height, width = params["size"]
    x = np.asarray(pixels).astype(np.float32).reshape(len(pixels), channels, height, width)
    x /= np.float32(params["scale"])
    mean = np.asarray(params["mean"], dtype=np.float32).reshape(1, channels, 1, 1)
    std = np.asarray(params["std"], dtype=np.float32).reshape(1, channels, 1, 1)
    x = (x - mean) / std
    return np.ascontiguousarray(x.reshape(len(pixels), *sample_shape), dtype=np.float32)


def load_image(path: str | Path, params: dict[str, Any]) -> np.ndarray:
    """Read a PNG/JPEG file (any size or mode), convert and resize as the manifest says: uint8 ``[C, H, W]``.

    The file must be a regular file of at most ``MAX_IMAGE_BYTES`` (a FIFO or device is refused at once)."""
    data = read_input_file(path, MAX_IMAGE_BYTES, "image")
    return decode_image(data, params, printable(str(path)))


def decode_image(data: bytes, params: dict[str, Any], where: str = "image", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode PNG/JPEG bytes as :func:`load_image` does. Only Pillow's PNG and JPEG decoders are ever used
    (``formats=``), never a plugin that hands the bytes to an external program; ``where`` names the image.
    ``max_pixels``: the most pixels decoded (a JPEG counts at the reduced scale it is decoded at)."""
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow warns above this and fails at twice it; we refuse above it
    height, width = params["size"]
    try:
        with warnings.catch_warnings(), Image.open(io.BytesIO(data), formats=FORMATS) as image:
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused just below instead
            if image.width * image.height > MAX_PIXELS:
                raise UserInputError(f"{where} is {image.width}x{image.height}; at most {MAX_PIXELS:,} pixels")
            if image.format == "JPEG":
                image.draft(params["mode"], (width, height))  # decode big JPEGs at a reduced scale
            if image.width * image.height > max_pixels:
                raise UserInputError(
                    f"{where} decodes to {image.width}x{image.height}; at most {max_pixels:,} pixels are decoded here"
                )
            image.load()
            if image.mode in ("RGBA", "LA", "P", "PA") and params["mode"] == "RGB":
                image = image.convert("RGBA")
                background = Image.new("RGBA", image.size, (255, 255, 255, 255))
                image = Image.alpha_composite(background, image)
            converted = image.convert(params["mode"])
            if converted.size != (width, height):
                converted = converted.resize((width, height), Image.Resampling.BILINEAR)
            array = np.asarray(converted, dtype=np.uint8)
    except UnidentifiedImageError:
        raise UserInputError(
            f"{where} is not a readable image: not a PNG or JPEG (the formats this runtime reads)"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise UserInputError(f"{where} is not a readable image ({type(exc).__name__})") from None
    except (MemoryError, RecursionError) as exc:
        raise UserInputError(f"{where} is too large to decode here ({type(exc).__name__})") from None
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
