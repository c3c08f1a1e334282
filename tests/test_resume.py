"""Resumable training: a run killed after an epoch, resumed, ends with bitwise the weights of an
uninterrupted run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from support import ROOT, cli_env, run_cli

pytestmark = pytest.mark.slow  # both tests train

# Train with the checkpoint writer replaced by one that SIGKILLs the process right after epoch 1's checkpoint.
KILLED_AFTER_EPOCH_1 = """
import os, signal, sys
from torchzoo.train import checkpoint
original = checkpoint.save
def save_then_die(path, state):
    original(path, state)
    if state["epoch"] == 1:
        os.kill(os.getpid(), signal.SIGKILL)
checkpoint.save = save_then_die
from torchzoo.cli import main
main(sys.argv[1:])
"""


def _weights(root: Path, model: str) -> dict[str, torch.Tensor]:
    return torch.load(root / model / "model.pt", weights_only=True)


@pytest.mark.parametrize("model", ["names", "mnist-mlp"])
def test_killed_then_resumed_equals_uninterrupted(model: str, tmp_path: Path, data_root: Path) -> None:
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    args = ["train", model, "--profile", "quick"]
    assert run_cli(*args, "--artifacts-dir", str(whole)).returncode == 0

    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_EPOCH_1, *args, "--artifacts-dir", str(resumed)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        env=cli_env(),
    )
    assert killed.returncode == -9, killed.stderr
    assert not (resumed / model / "train.json").exists()  # nothing published by the killed run
    assert (resumed / ".checkpoints" / model / "fit-1.pt").is_file()

    result = run_cli(*args, "--resume", "--artifacts-dir", str(resumed))
    assert result.returncode == 0, result.stderr
    a, b = _weights(whole, model), _weights(resumed, model)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    history = [json.loads((root / model / "history.json").read_text()) for root in (whole, resumed)]
    strip = [[{k: v for k, v in row.items() if k != "seconds"} for row in h] for h in history]
    assert strip[0] == strip[1]
    assert not (resumed / ".checkpoints" / model).exists()  # removed once the model is written


def test_resume_refuses_what_it_cannot_continue(tmp_path: Path, data_root: Path) -> None:
    nothing = run_cli("train", "names", "--profile", "quick", "--resume", "--artifacts-dir", str(tmp_path))
    assert nothing.returncode == 2 and "--resume: no checkpoint" in nothing.stderr
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            KILLED_AFTER_EPOCH_1,
            "train",
            "names",
            "--profile",
            "quick",
            "--artifacts-dir",
            str(tmp_path),
        ],
        capture_output=True,
        cwd=ROOT,
        timeout=600,
        env=cli_env(),
    )
    assert killed.returncode == -9
    other_seed = run_cli(
        "train", "names", "--profile", "quick", "--seed", "1", "--resume", "--artifacts-dir", str(tmp_path)
    )
    errors = [line for line in other_seed.stderr.splitlines() if line.startswith("torchzoo: error:")]
    assert other_seed.returncode == 2 and len(errors) == 1 and "'seed': 0" in errors[0]
