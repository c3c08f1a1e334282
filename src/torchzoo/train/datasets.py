"""Readers for the datasets in the tutorials' on-disk layouts (no torchvision, no downloads).

Each reader finds its files through the data root search of :mod:`torchzoo.paths` and fails with a
one-line error naming where it looked and what it expects.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torchzoo.errors import DataNotFoundError


@dataclass
class NamesData:
    names: list[str]
    targets: list[int]
    languages: list[str]


def read_names(directory: Path) -> NamesData:
    """The char-RNN data: ``names/<Language>.txt``, one UTF-8 name per line; sorted by language."""
    files = sorted(directory.glob("*.txt"))
    if not files:
        raise DataNotFoundError(f"no <Language>.txt files in {directory}; expected the tutorial's data/names")
    names: list[str] = []
    targets: list[int] = []
    languages = [f.stem for f in files]
    for index, path in enumerate(files):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                names.append(line.strip())
                targets.append(index)
    return NamesData(names, targets, languages)
