"""Where datasets and artifacts live.

Data root search order: ``--data-dir``, ``$TORCHZOO_DATA``, ``./data``; then the copy shipped in the package
(``torchzoo/builtin_data``: the names data only). ``torchzoo data download`` fills a data root.
Artifact root: ``--artifacts-dir``, ``$TORCHZOO_ARTIFACTS``, ``./artifacts``.

The layout of a data root (which directory holds which dataset) is here, so that a missing dataset's error can
name the command that fetches it without ``core`` importing the dataset catalog (``torchzoo.data.catalog``
builds its datasets on these directories).
"""

from __future__ import annotations

import os
from pathlib import Path

from torchzoo.core.errors import DataNotFoundError

#: the data shipped inside the package (``torchzoo/builtin_data``: the names data)
SHIPPED_ROOT = Path(__file__).resolve().parents[1] / "builtin_data"

#: ``torchzoo data download`` dataset name -> its directory under a data root (the tutorials' layouts)
DATASET_DIRS: dict[str, str] = {"names": "names", "mnist": "MNIST/raw", "cifar10": "cifar-10-batches-py"}


def data_root_candidates(data_dir: str | Path | None = None) -> list[Path]:
    """The data roots to search, in priority order (an explicit ``data_dir`` is the only candidate)."""
    if data_dir is not None:
        return [Path(data_dir)]
    candidates = []
    env = os.environ.get("TORCHZOO_DATA")
    if env:
        candidates.append(Path(env))
    candidates.append(Path("data"))
    return candidates


def download_command(relative: str, data_dir: str | Path | None = None) -> str | None:
    """The ``torchzoo data download`` command that fetches the dataset at ``relative``, if one does."""
    name = next((name for name, directory in DATASET_DIRS.items() if directory == relative), None)
    if name is None:
        return None
    where = f" --data-dir {data_dir}" if data_dir is not None else ""
    return f"torchzoo data download {name}{where}"


def find_dataset(relative: str, expects: str, data_dir: str | Path | None = None) -> Path:
    """Return ``<root>/<relative>`` for the first data root that has it, else the package's shipped copy,
    else a one-line error naming the ``torchzoo data download`` command that fetches it."""
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
