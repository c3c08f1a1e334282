"""The names char-RNN end to end: quick-profile accuracy, the ONNX check, predict from the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import Zoo, run_cli

QUICK_ACCURACY = 0.60  # the quick profile (3 epochs) reaches ~0.70; the full recipe >= 0.75 (README)


def test_quick_training_reaches_accuracy(zoo: Zoo) -> None:
    metrics = json.loads((zoo.trained("names") / "names" / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= QUICK_ACCURACY
    assert set(metrics["per_language_accuracy"]) >= {"Italian", "Russian", "Japanese"}
    assert metrics["test_size"] >= 2000  # a stratified 10% of 20,068 names


def test_onnx_check_passes_on_heldout_names(zoo: Zoo) -> None:
    directory = zoo.exported("names") / "names"
    report = json.loads((directory / "equivalence.json").read_text())
    onnx = report["formats"]["onnx"]
    assert onnx["passed"] is True
    assert onnx["heldout_top1_agreement"] == 1.0
    heldout = [c for c in onnx["checks"] if c["kind"] == "heldout"]
    assert max(c["max_abs"] for c in heldout) <= 1e-5
    # batch 1 and a batch of >= 200 held-out names of assorted lengths
    batches = {c["input_shapes"][0][0] for c in heldout}
    assert 1 in batches and max(batches) >= 200
    lengths = {c["input_shapes"][0][1] for c in onnx["checks"]}
    assert min(lengths) == 1 and max(lengths) == 64
    runners = {c["runner"] for c in onnx["checks"]}
    assert {f"onnxruntime_cpu_opt_{lvl}" for lvl in ("disabled", "basic", "extended", "all")} <= runners


def test_predict_rossi_is_italian(zoo: Zoo) -> None:
    root = zoo.exported("names")
    result = run_cli("predict", "names", "Rossi", "Müller", "Nguyễn", "O'Neill", "--json", "--artifacts-dir", str(root))
    assert result.returncode == 0, result.stderr
    results = json.loads(result.stdout)["results"]
    assert [r["input"] for r in results] == ["Rossi", "Müller", "Nguyễn", "O'Neill"]
    assert results[0]["label"] == "Italian"
    for r in results:
        probs = [t["probability"] for t in r["top"]]
        assert len(probs) == 3 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0 + 1e-9


def test_predict_table_output(zoo: Zoo) -> None:
    result = run_cli("predict", "names", "Rossi", "--top-k", "2", "--artifacts-dir", str(zoo.exported("names")))
    assert result.returncode == 0
    assert "Italian" in result.stdout and "#2" in result.stdout and "#3" not in result.stdout


@pytest.mark.parametrize("bad", ["", "   ", "12345", "R0ssi", "😀", "x" * 65])
def test_bad_names_exit_2_with_one_line(zoo: Zoo, bad: str) -> None:
    result = run_cli("predict", "names", bad, "--artifacts-dir", str(zoo.exported("names")))
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("torchzoo: error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr


def test_eager_model_matches_tutorial_one_name_loop(zoo: Zoo) -> None:
    """Batched, padded forward == the tutorial's one-letter-at-a-time loop on the same weights."""
    import torch

    from torchzoo.core.text_codec import encode_names
    from torchzoo.train.names import CharRNN

    torch.manual_seed(0)
    model = CharRNN(57, 128, 18).eval()
    names = ["Rossi", "Ng", "Abagnale", "Schwarzenegger"]
    batched = model(torch.from_numpy(encode_names(names)))
    for row, name in enumerate(names):
        hidden = torch.zeros(1, 128)
        for letter in torch.from_numpy(encode_names([name]))[0]:
            combined = torch.cat([letter[None], hidden], dim=1)
            hidden, output = model.i2h(combined), model.i2o(combined)
        np.testing.assert_allclose(batched[row].detach(), model.softmax(output)[0].detach(), atol=1e-6)
