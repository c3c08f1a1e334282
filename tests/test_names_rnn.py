"""names-gru / names-lstm: quick-profile metrics, every export format checked, runtime predict, padding."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from torchzoo.core.text_codec import encode_names
from torchzoo.train.names_rnn import MEMBERS, AveragedRNNs

from support import Zoo


def test_quick_metrics_report_balanced_and_per_language(zoo: Zoo) -> None:
    directory = zoo.trained("names-gru") / "names-gru"
    metrics = json.loads((directory / "metrics.json").read_text())
    per_language = metrics["per_language_accuracy"]
    assert len(per_language) == 18 and 0.0 < metrics["test_accuracy"] <= 1.0
    assert metrics["test_balanced_accuracy"] == pytest.approx(np.mean(list(per_language.values())), abs=1e-12)
    counts = np.array(metrics["confusion_matrix"]["counts"])
    assert counts.shape == (18, 18) and counts.sum() == metrics["test_size"]
    assert np.trace(counts) / counts.sum() == pytest.approx(metrics["test_accuracy"], abs=1e-6)
    assert (directory / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    record = json.loads((directory / "train.json").read_text())
    assert record["preprocessing"]["kind"] == "names_one_hot" and record["postprocessing"]["transform"] == "exp"


def test_every_format_passes_at_lengths_1_to_64(zoo: Zoo) -> None:
    report = json.loads((zoo.exported("names-gru") / "names-gru" / "equivalence.json").read_text())
    assert set(report["formats"]) >= {"state_dict", "torchscript", "onnx"}
    for entry in report["formats"].values():
        assert entry["passed"] is True and entry["heldout_top1_agreement"] == 1.0
        assert max(c["max_abs"] for c in entry["checks"]) <= 1e-5
        lengths = {c["input_shapes"][0][1] for c in entry["checks"]}
        batches = {c["input_shapes"][0][0] for c in entry["checks"]}
        assert min(lengths) == 1 and max(lengths) == 64 and 1 in batches and max(batches) >= 200


def test_runtime_predicts_a_language_for_rossi(zoo: Zoo) -> None:
    from torchzoo.serve_cli import load

    predictor = load(zoo.exported("names-gru") / "names-gru")
    results = predictor.predict(["Rossi", "Nguyen"], top_k=3)
    assert len(results) == 2 and all(r["label"] in predictor.labels for r in results)
    probs = [t["probability"] for t in results[0]["top"]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0 + 1e-6


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_padded_batch_equals_each_name_alone(cell: str) -> None:
    """The last real step is read per name: padding rows change nothing."""
    torch.manual_seed(0)
    model = AveragedRNNs(cell, 57, 32, 1, 18).eval()
    names = ["Rossi", "Ng", "O'Neill", "Abagnale", "Schwarzenegger", "X"]
    with torch.no_grad():
        batched = model(torch.from_numpy(encode_names(names)))
        for row, name in enumerate(names):
            alone = model(torch.from_numpy(encode_names([name])))
            np.testing.assert_allclose(batched[row].numpy(), alone[0].numpy(), atol=1e-5, rtol=0)
            padded = model(torch.nn.functional.pad(torch.from_numpy(encode_names([name])), (0, 0, 0, 9)))
            np.testing.assert_allclose(padded[0].numpy(), alone[0].numpy(), atol=1e-5, rtol=0)


def test_bias_shift_is_the_post_hoc_logit_adjustment_of_the_average() -> None:
    """adjust_logits(log_prior, tau) turns the output into log_softmax(mean member log-probs - tau * log_prior)."""
    torch.manual_seed(0)
    model = AveragedRNNs("gru", 57, 16, 1, 18).eval()
    letters = torch.from_numpy(encode_names(["Rossi", "Nguyen", "Kim", "Silva"]))
    log_prior = torch.log_softmax(torch.randn(18), dim=0)
    with torch.no_grad():
        members = model.member_log_probs(letters)
        expected = torch.log_softmax(members.mean(dim=0) - 0.3 * log_prior, dim=1)
        model.adjust_logits(log_prior, 0.3)
        adjusted = model(letters)
    assert members.shape == (MEMBERS, 4, 18) and MEMBERS > 1
    assert not torch.allclose(members[0], members[1])  # the members start from different weights
    np.testing.assert_allclose(adjusted.numpy(), expected.numpy(), atol=1e-5, rtol=0)
