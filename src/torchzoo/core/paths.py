"""Where datasets and artifacts live.

Data root search order: ``--data-dir``, ``$TORCHZOO_DATA``, ``./data``, ``../shared/data``; then the copy
shipped in the package (``torchzoo/builtin_data``: the names data only).
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
    """Return ``<root>/<relative>`` for the first data root that has it, else the package's shipped copy,
    else a one-line error naming the ``torchzoo data download`` command that fetches it."""
    from torchzoo.data.catalog import SHIPPED_ROOT, download_command

    candidates = data_root_candidates(data_dir)
    for root in candidates:
        path = root / relative
        if path.exists():
            return path
    if (SHIPPED_ROOT / relative).exists():
        return SHIPPED_ROOT / relative
    looked = ", ".join(str((root / relative).resolve()) for root in candidates)
    command = download_command(relative, data_dir)
    fetch = f"; fetch it with '{command}'" if command else ""
    raise DataNotFoundError(f"dataset '{relative}' not found (looked in: {looked}); expected {expects}{fetch}")


def artifacts_root(artifacts_dir: str | Path | None = None) -> Path:
    """The root of the artifact tree (not created here)."""
    if artifacts_dir is not None:
        return Path(artifacts_dir)
    return Path(os.environ.get("TORCHZOO_ARTIFACTS", "artifacts"))
