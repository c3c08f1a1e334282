"""Resumable training: the shared loop writes a checkpoint after every epoch; ``train --resume`` continues.

A checkpoint holds the model, optimizer and scheduler states, the RNG states (Python, numpy, torch CPU and
CUDA), the epoch, the history and the best-epoch bookkeeping, written atomically (a temp file, then a
rename), as torchvision's reference recipe does. One training may call the loop more than once (moons
restarts); each call gets its own numbered checkpoint, and a call whose checkpoint says it finished is
replayed from it without training. A checkpoint is used only by the same model, profile and seed.
"""

from __future__ import annotations

import contextlib
import random
import shutil
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from torchzoo.core.artifact import atomic_path
from torchzoo.core.errors import UserInputError

CHECKPOINTS = ".checkpoints"


@dataclass
class Checkpointing:
    directory: Path
    resume: bool
    fingerprint: dict[str, Any]  # model, profile, seed: what a checkpoint must match to be resumed
    calls: int = 0

    def next_path(self) -> Path:
        self.calls += 1
        return self.directory / f"fit-{self.calls}.pt"


_ACTIVE: ContextVar[Checkpointing | None] = ContextVar("torchzoo_checkpointing", default=None)


@contextlib.contextmanager
def checkpointing(directory: Path, resume: bool, fingerprint: dict[str, Any]) -> Iterator[Checkpointing]:
    """Checkpoint every loop run inside the block into ``directory``; removed once training succeeds."""
    if not resume:
        shutil.rmtree(directory, ignore_errors=True)
    elif not directory.is_dir():
        raise UserInputError(f"--resume: no checkpoint at {directory}; train without --resume")
    directory.mkdir(parents=True, exist_ok=True)
    state = Checkpointing(directory, resume, fingerprint)
    token = _ACTIVE.set(state)
    try:
        yield state
    finally:
        _ACTIVE.reset(token)
    shutil.rmtree(directory, ignore_errors=True)


def next_checkpoint() -> tuple[Path, dict[str, Any] | None] | None:
    """For one loop run: its checkpoint path and the saved state to resume from (None: start afresh);
    None outside :func:`checkpointing`."""
    active = _ACTIVE.get()
    if active is None:
        return None
    path = active.next_path()
    if not (active.resume and path.exists()):
        return path, None
    saved = torch.load(path, map_location="cpu", weights_only=False)  # our own file, written below
    if saved.get("fingerprint") != active.fingerprint:
        raise UserInputError(
            f"--resume: {path} was written for {saved.get('fingerprint')}, not {active.fingerprint}; "
            "train without --resume"
        )
    return path, saved


def save(path: Path, state: dict[str, Any]) -> None:
    active = _ACTIVE.get()
    state = {**state, "fingerprint": active.fingerprint if active else None, "rng": rng_states()}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def rng_states() -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def restore_rng(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if states["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
