"""Array files a person names (``.npy``, ``.npz``), read without trusting them: a bounded regular file, headers
parsed by numpy's own parser and held to the bytes that follow, no pickles, no object or record dtypes, and
an ``.npz``'s members bounded before they are decompressed."""

from __future__ import annotations

import io
import math
import zipfile
from pathlib import Path

import numpy as np

from torchzoo.core.errors import UserInputError
from torchzoo.core.limits import MAX_NPY_BYTES
from torchzoo.core.safe_io import read_input_file
from torchzoo.core.text_codec import printable

#: .npy dtypes an image batch may have (uint8 pixels, float model input)
PIXEL_KINDS = "uifb"
PIXELS = "arrays must be uint8 pixels or float32 model input"
#: members an .npz may hold (a model has at most 16 inputs; a few more are refused by name, not here)
MAX_NPZ_MEMBERS = 64


def read_npy(path: str | Path, kinds: str = PIXEL_KINDS, refusal: str = PIXELS) -> np.ndarray:
    """A ``.npy`` array from a regular file of at most ``MAX_NPY_BYTES`` (see :func:`parse_npy`)."""
    return parse_npy(read_input_file(path, MAX_NPY_BYTES, ".npy"), printable(str(path)), kinds, refusal)


def parse_npy(data: bytes, shown: str, kinds: str = PIXEL_KINDS, refusal: str = PIXELS) -> np.ndarray:
    """The array a ``.npy`` file's bytes hold. The header is read with numpy's own parser and must describe
    exactly the bytes that follow, so a header cannot make numpy allocate more; a dtype whose kind is not in
    ``kinds`` (objects, strings, records...) is refused with ``refusal`` (what the caller takes)."""
    from numpy.lib import format as npy

    stream = io.BytesIO(data)
    try:
        version = npy.read_magic(stream)
        reader = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        shape, fortran, dtype = reader(stream)
    except (ValueError, OSError, SyntaxError, TypeError, RecursionError) as exc:
        raise UserInputError(f"{shown} is not a readable .npy array ({type(exc).__name__})") from None
    if dtype.hasobject or dtype.kind not in kinds or dtype.fields is not None:
        raise UserInputError(f"{shown}: {refusal}, not {dtype}")
    expected = math.prod(shape) * dtype.itemsize
    if len(data) - stream.tell() != expected:
        raise UserInputError(f"{shown}: its header describes {expected:,} bytes of data, the file holds another size")
    array = np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=stream.tell())
    return array.reshape(shape, order="F" if fortran else "C")


def read_npz(path: str | Path, kinds: str, refusal: str) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file (``np.savez``/``savez_compressed``) by key. The file and the sum of its
    members' declared sizes are each at most ``MAX_NPY_BYTES``, and a member is read no further than its
    declared size, so a zip bomb is refused before it is inflated."""
    shown = printable(str(path))
    data = read_input_file(path, MAX_NPY_BYTES, ".npz")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            if len(members) > MAX_NPZ_MEMBERS:
                raise UserInputError(f"{shown} holds {len(members):,} arrays; at most {MAX_NPZ_MEMBERS}")
            if sum(m.file_size for m in members) > MAX_NPY_BYTES:
                raise UserInputError(f"{shown}: its arrays take more than {MAX_NPY_BYTES:,} bytes")
            arrays = {}
            for member in members:
                key = member.filename.removesuffix(".npy")
                with archive.open(member) as stream:
                    raw = stream.read(member.file_size + 1)
                if len(raw) != member.file_size:
                    raise UserInputError(f"{shown}: array {printable(key, 64)!r} is not the size its entry says")
                arrays[key] = parse_npy(raw, f"{shown}[{printable(key, 64)}]", kinds, refusal)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError, ValueError) as exc:
        raise UserInputError(f"{shown} is not a readable .npz file ({type(exc).__name__})") from None
    if not arrays:
        raise UserInputError(f"{shown} holds no arrays")
    return arrays
