"""``torchzoo report``: the Markdown page and its PNG plots.

End to end (quick profile, session fixture ``zoo``): house-linear, house-softexp, moons and mnist-mlp-depth3
(also trained by tests/test_mnist.py, so one session trains it once) are copied into a private artifact
root, so which sections have models is fixed whatever else the session trained. The MNIST sections with
several models and epochs are unit-tested on hand-made records (history, metrics, train.json: those
sections read no weights).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from torchzoo import report
from torchzoo.core.errors import UserInputError

from support import run_cli

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IMAGE_LINK = re.compile(r"!\[[^\]]*\]\((report/[^)]+\.png)\)")
TRAINED = ("house-linear", "house-softexp", "moons", "mnist-mlp-depth3")
SECTIONS = {
    "activations": "MNIST MLP: activation functions",
    "depth": "MNIST MLP: depth",
    "loss": "Loss per iteration of the best MNIST MLP",
    "house": "House price fits per final activation",
    "moons": "Moons decision boundary",
    "summary": "Summary of every trained model",
}


def sections(markdown: str) -> dict[str, str]:
    """Section title -> its body."""
    parts = markdown.split("\n## ")[1:]
    return {part.split("\n", 1)[0]: part.split("\n", 1)[1].strip() for part in parts}


def assert_images_valid(root: Path, markdown: str) -> list[str]:
    """Every image the page links exists under root, is a readable PNG of a real size; returns the links."""
    links = IMAGE_LINK.findall(markdown)
    for link in links:
        path = root / link
        data = path.read_bytes()
        assert data[:8] == PNG_SIGNATURE, link
        assert len(data) > 10_000, f"{link} is only {len(data)} bytes"
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.width >= 500 and image.height >= 300
    assert sorted(p.name for p in (root / report.REPORT_DIR).glob("*.png")) == sorted(Path(x).name for x in links)
    return links


@pytest.mark.slow
def test_report_from_trained_models(zoo, tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    for name in TRAINED:
        shutil.copytree(zoo.trained(name) / name, root / name)
    result = run_cli("report", "--artifacts-dir", str(root))
    assert result.returncode == 0, result.stderr + result.stdout
    assert str(root / "report.md") in result.stdout.replace("\n", "")
    markdown = (root / "report.md").read_text()
    by_title = sections(markdown)
    assert list(by_title) == list(SECTIONS.values())
    links = assert_images_valid(root, markdown)
    assert links == [f"report/{n}.png" for n in ("mlp_depth", "mlp_best_loss", "house_fits", "moons_boundary")]

    activations = by_title[SECTIONS["activations"]]
    assert activations.startswith("_Skipped: none of mnist-mlp, mnist-mlp-sigmoid")
    assert "![" not in activations
    depth = by_title[SECTIONS["depth"]]
    assert "| mnist-mlp-depth3 | depth 3 | 1 |" in depth
    assert "Not trained: mnist-mlp, mnist-mlp-depth5, mnist-mlp-depth7." in depth
    assert "**mnist-mlp-depth3**" in by_title[SECTIONS["loss"]]
    house = by_title[SECTIONS["house"]]
    assert "| house-linear | linear |" in house and "| house-softexp | softexp |" in house
    assert "Not trained: house-relu, house-prelu, house-bentid, house-softexp2." in house
    moons_accuracy = json.loads((root / "moons" / "metrics.json").read_text())["test_accuracy"]
    assert f"Test accuracy **{moons_accuracy:.4f}**" in by_title[SECTIONS["moons"]]
    summary = by_title[SECTIONS["summary"]]
    for name in TRAINED:
        assert f"| {name} |" in summary
    assert "| moons | binary | test_accuracy |" in summary


def test_report_without_trained_models_is_a_user_error(tmp_path: Path) -> None:
    result = run_cli("report", "--artifacts-dir", str(tmp_path / "empty"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "no trained models" in result.stderr


# --- the MNIST sections on hand-made records ----------------------------------------------------------


def fake_mlp(root: Path, name: str, test_accuracy: float, epochs: int = 3, iterations: int = 40) -> None:
    """train.json, metrics.json and history.json as the mnist_mlp family writes them (no weights)."""
    rng = np.random.default_rng(len(name))
    directory = root / name
    directory.mkdir(parents=True)
    history: list[dict[str, Any]] = []
    for epoch in range(1, epochs + 1):
        start = 2.3 / epoch
        losses = (start * np.exp(-np.arange(iterations) / 30) + rng.uniform(0, 0.1, iterations)).tolist()
        val_acc = test_accuracy - 0.05 / epoch
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_acc": val_acc, "val_loss": 0.3})
        history[-1]["iteration_losses"] = losses
    metrics = {"test_accuracy": test_accuracy, "test_loss": 0.3, "best_val_accuracy": history[-1]["val_acc"]}
    record = {"model": name, "profile": "full", "seed": 0, "train_seconds": 12.5, "parameters": 1000, "metrics": {}}
    for filename, obj in (("train.json", record), ("metrics.json", metrics), ("history.json", history)):
        (directory / filename).write_text(json.dumps(obj))


def test_mnist_sections_plot_every_trained_variant(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    accuracies = {"mnist-mlp": 0.975, "mnist-mlp-sigmoid": 0.96, "mnist-mlp-tanh": 0.97, "mnist-mlp-depth5": 0.98}
    for name, accuracy in accuracies.items():
        fake_mlp(root, name, accuracy)
    (root / report.REPORT_DIR).mkdir()
    (root / report.REPORT_DIR / "stale.png").write_bytes(PNG_SIGNATURE)

    result = report.write_report(root)

    markdown = result.path.read_text()
    by_title = sections(markdown)
    assert_images_valid(root, markdown)  # stale.png, no longer linked, is gone
    assert result.skipped == [SECTIONS["house"], SECTIONS["moons"]]
    assert by_title[SECTIONS["house"]].startswith("_Skipped: none of house-linear")
    assert by_title[SECTIONS["moons"]].startswith("_Skipped: moons is not trained")
    activations = by_title[SECTIONS["activations"]]
    for name in ("mnist-mlp", "mnist-mlp-sigmoid", "mnist-mlp-tanh"):
        assert f"| {name} |" in activations
    assert "| mnist-mlp-tanh | tanh | 3 | 0.9533 | 0.9533 | 0.9700 | 12.5 | full |" in activations
    assert "Not trained: mnist-mlp-elu, mnist-mlp-leakyrelu." in activations
    depth = by_title[SECTIONS["depth"]]
    assert depth.index("| mnist-mlp | depth 4 |") < depth.index("| mnist-mlp-depth5 | depth 5 |")
    loss = by_title[SECTIONS["loss"]]
    assert "Best of 4 trained MLP(s): **mnist-mlp-depth5**" in loss
    assert "120 iterations over 3 epoch(s)" in loss


def test_report_of_untrained_root_raises(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="no trained models"):
        report.write_report(tmp_path)


def test_moving_average_is_trailing_mean() -> None:
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert report.moving_average(values, 2).tolist() == [1.5, 2.5, 3.5, 4.5]
    assert report.moving_average(values, 1).tolist() == values.tolist()
    assert report.moving_average(values, 9).tolist() == values.tolist()  # fewer values than the window
