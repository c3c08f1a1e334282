"""File checksums in the catalog's ``"<algorithm>:<hex>"`` form (md5 or sha256, as each source publishes)."""

from __future__ import annotations

import hashlib
from pathlib import Path

ALGORITHMS = ("md5", "sha256")


def digest(path: Path, algorithm: str, chunk: int = 1 << 20) -> str:
    """``"<algorithm>:<hex>"`` of the file at ``path``, read in chunks."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unsupported checksum algorithm {algorithm!r}")
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return f"{algorithm}:{h.hexdigest()}"


def matches(path: Path, expected: str) -> tuple[bool, str]:
    """Whether ``path`` has the ``expected`` checksum, and its actual checksum (same algorithm)."""
    actual = digest(path, expected.split(":", 1)[0])
    return actual == expected, actual
