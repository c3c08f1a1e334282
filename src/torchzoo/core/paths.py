"""Where datasets and artifacts live.

Data root search order: ``--data-dir``, ``$TORCHZOO_DATA``, ``./data``, ``../shared/data``.
Artifact root: ``--artifacts-dir``, ``$TORCHZOO_ARTIFACTS``, ``./artifacts``.
"""

from __future__ import annotations

import os
from pathlib import Path

from torchzoo.core.errors import DataNotFoundError


def data_root_candidates(data_dir: str | Path | None = None) -> list[Path]:
    """The data roots to search, in priority order (an explicit ``data_dir`` is the only candidate)."""
    if data_dir is not None:
        return [Path(data_dir)]
    candidates = []
    env = os.environ.get("TORCHZOO_DATA")
    if env:
        candidates.append(Path(env))
    candidates += [Path("data"), Path("..") / "shared" / "data"]
    return candidates


def find_dataset(relative: str, expects: str, data_dir: str | Path | None = None) -> Path:
    """Return ``<root>/<relative>`` for the first data root that has it, else a one-line error."""
    candidates = data_root_candidates(data_dir)
    for root in candidates:
        path = root / relative
        if path.exists():
            return path
    looked = ", ".join(str((root / relative).resolve()) for root in candidates)
    raise DataNotFoundError(f"dataset '{relative}' not found (looked in: {looked}); expected {expects}")


def artifacts_root(artifacts_dir: str | Path | None = None) -> Path:
    """The root of the artifact tree (not created here)."""
    if artifacts_dir is not None:
        return Path(artifacts_dir)
    return Path(os.environ.get("TORCHZOO_ARTIFACTS", "artifacts"))
