"""Readers for the datasets in the tutorials' on-disk layouts (no torchvision, no downloads).

Each reader finds its files through the data root search of :mod:`torchzoo.core.paths` and fails with a
one-line error naming where it looked and what it expects.
"""

from __future__ import annotations

import gzip
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from torchzoo.core.errors import DataNotFoundError


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


@dataclass
class ImageSplit:
    """Images as uint8 ``[n, H, W]`` (grey) or ``[n, 3, H, W]`` (colour) and int64 targets."""

    images: np.ndarray
    targets: np.ndarray


@dataclass
class ImageData:
    train: ImageSplit
    test: ImageSplit
    classes: list[str]


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST's format), gzip-compressed or not: big-endian header, then uint8 data."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
        magic = int.from_bytes(raw[:4], "big")
        if magic >> 8 != 0x08:  # 0x0000 08 nd: unsigned byte data with nd dimensions
            raise ValueError(f"magic {magic:#x} is not an unsigned-byte IDX file")
        ndim = magic & 0xFF
        shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
        data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
        return data.reshape(shape)
    except (OSError, ValueError, EOFError) as exc:
        raise DataNotFoundError(f"{path} is not a readable IDX file: {exc}") from exc


def _find_idx(directory: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem):
        if (directory / name).exists():
            return directory / name
    raise DataNotFoundError(
        f"{directory} lacks {stem}(.gz); expected the four MNIST IDX files (torchvision layout); "
        "fetch them with 'torchzoo data download mnist'"
    )


def read_mnist(raw_dir: Path) -> ImageData:
    """MNIST from ``MNIST/raw/`` (the four original IDX files, .gz or unpacked)."""
    split = {}
    for name, prefix in (("train", "train"), ("test", "t10k")):
        images = _read_idx(_find_idx(raw_dir, f"{prefix}-images-idx3-ubyte"))
        labels = _read_idx(_find_idx(raw_dir, f"{prefix}-labels-idx1-ubyte")).astype(np.int64)
        split[name] = ImageSplit(images, labels)
    return ImageData(split["train"], split["test"], [str(d) for d in range(10)])


def _read_cifar_batch(path: Path) -> ImageSplit:
    try:
        with open(path, "rb") as fh:
            batch = pickle.load(fh, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (OSError, pickle.UnpicklingError, KeyError, ValueError, EOFError) as exc:
        raise DataNotFoundError(f"{path} is not a CIFAR-10 python batch: {exc}") from exc
    return ImageSplit(data, labels)


def read_cifar10(directory: Path) -> ImageData:
    """CIFAR-10 from ``cifar-10-batches-py/``: whichever of ``data_batch_1..5`` are present, ``test_batch``."""
    train_files = sorted(directory.glob("data_batch_[1-5]"))
    if not train_files or not (directory / "test_batch").exists():
        raise DataNotFoundError(
            f"{directory} lacks data_batch_N / test_batch; expected CIFAR-10's python layout; "
            "fetch it with 'torchzoo data download cifar10'"
        )
    parts = [_read_cifar_batch(p) for p in train_files]
    train = ImageSplit(np.concatenate([p.images for p in parts]), np.concatenate([p.targets for p in parts]))
    try:
        with open(directory / "batches.meta", "rb") as fh:
            classes = [c.decode() for c in pickle.load(fh, encoding="bytes")[b"label_names"]]
    except (OSError, pickle.UnpicklingError, KeyError) as exc:
        raise DataNotFoundError(f"{directory / 'batches.meta'} is missing or unreadable: {exc}") from exc
    return ImageData(train, _read_cifar_batch(directory / "test_batch"), classes)
