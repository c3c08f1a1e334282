"""Same profile, same seed, same machine: the same weights, bit for bit."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from support import Zoo, run_cli


@pytest.mark.parametrize("model", ["names", "names-gru"])
def test_two_quick_trainings_give_identical_weights(zoo: Zoo, tmp_path: Path, model: str) -> None:
    first = zoo.trained(model) / model / "model.pt"
    result = run_cli("train", model, "--profile", "quick", "--seed", "0", "--artifacts-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr + result.stdout
    a = torch.load(first, map_location="cpu", weights_only=True)
    b = torch.load(tmp_path / model / "model.pt", map_location="cpu", weights_only=True)
    assert list(a) == list(b)
    for key in a:
        assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key
