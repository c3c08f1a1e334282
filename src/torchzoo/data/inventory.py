"""What ``torchzoo data list`` reports: for each dataset, the directory the training loaders would use (the
same search as :func:`torchzoo.core.paths.find_dataset`), its size and how its files compare with the
published checksums."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torchzoo.core.paths import data_root_candidates
from torchzoo.data.catalog import SHIPPED_ROOT, Dataset, download_command
from torchzoo.data.checksum import matches


def locate(dataset: Dataset, data_dir: str | Path | None = None) -> tuple[Path | None, str]:
    """The dataset's directory and where it was found (``data root`` or ``shipped``), or ``(None, ...)``."""
    for root in data_root_candidates(data_dir):
        if (root / dataset.relative).exists():
            return root / dataset.relative, "data root"
    if dataset.shipped and (SHIPPED_ROOT / dataset.relative).exists():
        return SHIPPED_ROOT / dataset.relative, "shipped in the package"
    return None, "not found"


def inspect(dataset: Dataset, data_dir: str | Path | None = None) -> dict[str, Any]:
    """One row of ``data list``: location, bytes, and which files are verified / differ / missing."""
    directory, found = locate(dataset, data_dir)
    row: dict[str, Any] = {"dataset": dataset.name, "description": dataset.description, "found": found}
    if directory is None:
        looked = [str((root / dataset.relative).resolve()) for root in data_root_candidates(data_dir)]
        row.update(directory=None, looked_in=looked, bytes=0, state="missing", fetch=download_command(dataset.relative))
        return row
    verified, differ, missing, unpacked = [], [], [], []
    size = 0
    for entry in dataset.files:
        path = directory / entry.name
        if path.is_file():
            size += path.stat().st_size
            (verified if matches(path, entry.checksum)[0] else differ).append(entry.name)
        elif entry.name.endswith(".gz") and (directory / entry.name.removesuffix(".gz")).is_file():
            unpacked.append(entry.name.removesuffix(".gz"))
            size += (directory / entry.name.removesuffix(".gz")).stat().st_size
        else:
            missing.append(entry.name)
    partial = sorted(p.name for p in directory.glob("*.part"))
    row.update(
        directory=str(directory.resolve()),
        bytes=size,
        verified=verified,
        differ=differ,
        missing=missing,
        unpacked=unpacked,
        partial=partial,
        state=_state(len(dataset.files), verified, differ, missing, unpacked, partial),
    )
    if differ or missing or partial:
        row["fetch"] = download_command(dataset.relative)
    return row


def _state(
    total: int, verified: list[str], differ: list[str], missing: list[str], unpacked: list[str], partial: list[str]
) -> str:
    if len(verified) == total:
        return f"verified ({total} files)"
    parts = [f"{len(verified)}/{total} verified"]
    if differ:
        parts.append(f"checksum differs: {', '.join(differ)}")
    if unpacked:
        parts.append(f"unpacked, not checked: {', '.join(unpacked)}")
    if missing:
        parts.append(f"missing: {', '.join(missing)}")
    if partial:
        parts.append(f"partial download: {', '.join(partial)}")
    return "; ".join(parts)
