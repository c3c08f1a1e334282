"""The convolutional families: the blitz CIFAR-10 CNN and the CelebA MultiClassifier (on its MNIST stand-in).

Quick profiles only. cifar10-cnn must reach a stated accuracy and export in every format; celeba-multilabel
(~104.6M parameters) must train, say in its manifest that its data is a stand-in, and export; its
stand-in generator must be deterministic and label exactly the digits it draws.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from support import Zoo

QUICK_CIFAR_ACCURACY = 0.30  # quick profile (2 epochs, 9,000 images): 0.34-0.36 over seeds 0-2; full >= 0.50
ORT_RUNNERS = {f"onnxruntime_cpu_opt_{level}" for level in ("disabled", "basic", "extended", "all")}


def _read(directory: Path, name: str) -> dict:
    return json.loads((directory / name).read_text())


# --- cifar10-cnn -------------------------------------------------------------------------------------


def _cifar_data_root_facts(data_root: Path) -> tuple[list[str], bool]:
    """The training batches in the data root's CIFAR-10 copy, and whether every file has its published md5."""
    from torchzoo.data.catalog import CIFAR10
    from torchzoo.data.checksum import matches

    directory = data_root / CIFAR10.relative
    batches = [f"data_batch_{i}" for i in range(1, 6) if (directory / f"data_batch_{i}").is_file()]
    published = {f.name: f.checksum for f in CIFAR10.files}
    read = [*batches, "test_batch", "batches.meta"]
    return batches, all((directory / n).is_file() and matches(directory / n, published[n])[0] for n in read)


def test_cifar_quick_profile_reaches_accuracy(zoo: Zoo, data_root: Path) -> None:
    directory = zoo.trained("cifar10-cnn") / "cifar10-cnn"
    metrics = _read(directory, "metrics.json")
    assert next(iter(metrics)) == "test_accuracy"
    assert metrics["test_accuracy"] >= QUICK_CIFAR_ACCURACY
    assert metrics["test_size"] == 10_000
    assert len(metrics["per_class_accuracy"]) == 10
    record = _read(directory, "train.json")
    assert record["dataset"]["stand_in"] is False
    # the caveat says what the data root holds: a SUBSET unless data_batch_1..5 are all there (the download),
    # rebuilt from JPEG copies unless every file has its published md5
    batches, official = _cifar_data_root_facts(data_root)
    assert record["dataset"]["training_batches"] == batches and record["dataset"]["official_files"] is official
    caveat = record["dataset"].get("caveat", "")
    assert ("SUBSET" in caveat) is (len(batches) < 5) and ("JPEG" in caveat) is not official
    assert record["dataset"]["validation_images"] == 1000
    assert record["labels"][:3] == ["airplane", "automobile", "bird"]
    assert record["parameters"] == 62_006  # the tutorial's Net
    prep = record["preprocessing"]
    assert (prep["mode"], prep["size"], prep["mean"], prep["std"]) == ("RGB", [32, 32], [0.5] * 3, [0.5] * 3)
    assert record["postprocessing"]["transform"] == "softmax"


def test_cifar_exports_every_format_equivalently(zoo: Zoo) -> None:
    directory = zoo.exported("cifar10-cnn") / "cifar10-cnn"
    manifest = _read(directory, "manifest.json")
    assert {"state_dict", "torchscript", "pt2", "onnx"} <= set(manifest["formats"])  # + the variants published
    report = _read(directory, "equivalence.json")
    for name, fmt in report["formats"].items():
        assert fmt["passed"] is True, name
        assert fmt["heldout_top1_agreement"] == 1.0, name
        assert fmt["max_abs"] <= 1e-5, name
    onnx_checks = report["formats"]["onnx"]["checks"]
    assert {c["runner"] for c in onnx_checks} == ORT_RUNNERS
    assert {(c["kind"], c["input_shapes"][0][0]) for c in onnx_checks} == {
        ("heldout", 1),
        ("heldout", 64),
        ("random", 1),
        ("random", 64),
    }


# --- celeba-multilabel: the stand-in generator --------------------------------------------------------


def test_celeba_learning_rate_warms_up_holds_then_decays() -> None:
    """Full profile: 100 warm-up steps from lr/100, constant, then linear to lr/300 over the last 300 of 2,100."""
    from torchzoo.train.celeba import lr_factor

    factors = [lr_factor(step, 2100, warmup_steps=100, decay_steps=300) for step in range(2100)]
    assert factors[0] == pytest.approx(0.01) and factors[99] == 1.0
    assert set(factors[99:1801]) == {1.0}
    assert factors[1801] == pytest.approx(299 / 300) and factors[-1] == pytest.approx(1 / 300)
    assert all(a > b for a, b in itertools.pairwise(factors[1800:]))


def _solid_digits() -> object:
    """Ten 28x28 "digits" that are solid squares (class k = image k), so each one drawn is one blob."""
    from torchzoo.train.datasets import ImageSplit

    images = np.zeros((10, 28, 28), dtype=np.uint8)
    images[:, 4:24, 4:24] = 255
    return ImageSplit(images, np.arange(10, dtype=np.int64))


def test_stand_in_canvases_are_deterministic_per_seed() -> None:
    from torchzoo.train.celeba import DigitCanvases

    digits = _solid_digits()
    first, labels = DigitCanvases(digits, seed=7, stream=0).batch(range(5))
    again, labels_again = DigitCanvases(digits, seed=7, stream=0).batch(range(5))
    assert first.dtype == np.uint8 and first.shape == (5, 3, 256, 256)
    assert np.array_equal(first, again) and np.array_equal(labels, labels_again)
    # one canvas is the same whichever batch draws it
    assert np.array_equal(DigitCanvases(digits, seed=7, stream=0).batch([3])[0][0], first[3])
    other_seed, _ = DigitCanvases(digits, seed=8, stream=0).batch(range(5))
    other_split, _ = DigitCanvases(digits, seed=7, stream=1).batch(range(5))
    assert not np.array_equal(first, other_seed) and not np.array_equal(first, other_split)


def test_stand_in_labels_are_the_digits_drawn() -> None:
    from torchzoo.train.celeba import DigitCanvases

    canvases = DigitCanvases(_solid_digits(), seed=0, stream=2)
    counts = set()
    pixels, labels = canvases.batch(range(60))
    for index in range(60):
        canvas, drawn = canvases.draw(index)
        assert np.array_equal(canvas, pixels[index])
        assert 1 <= len(drawn) <= 4
        counts.add(len(drawn))
        expected = np.zeros(10, dtype=np.float32)
        expected[drawn] = 1.0
        assert np.array_equal(labels[index], expected)
        # every digit drawn is on the canvas, apart from the others: one blob of ink per digit
        ink = np.any(canvas != _background(canvas)[:, None, None], axis=0)
        _, blobs = ndimage.label(ink)
        assert blobs == len(drawn), (index, drawn)
    assert counts == {1, 2, 3, 4}


def _background(canvas: np.ndarray) -> np.ndarray:
    """The most common colour of a canvas (its background)."""
    colours, frequency = np.unique(canvas.reshape(3, -1).T, axis=0, return_counts=True)
    return colours[frequency.argmax()]


def test_real_celeba_source_is_refused_with_a_clear_message() -> None:
    import dataclasses

    from torchzoo.core.errors import DataNotFoundError
    from torchzoo.train.registry import get

    spec = dataclasses.replace(get("celeba-multilabel"), options={"source": "celeba"})
    with pytest.raises(DataNotFoundError, match="not implemented"):
        spec.family.load_data(spec, None, 0)


def test_a_real_celeba_copy_is_reported_as_found_but_unused(tmp_path: Path, data_root: Path) -> None:
    from torchzoo.train.registry import get

    (tmp_path / "celeba" / "img_align_celeba").mkdir(parents=True)
    (tmp_path / "celeba" / "list_attr_celeba.txt").write_text("0\n")
    (tmp_path / "MNIST").symlink_to(data_root / "MNIST")
    spec = get("celeba-multilabel")
    family = spec.family
    info = family.dataset_info(spec, family.load_data(spec, tmp_path, 0))
    assert info["stand_in"] is True
    assert info["real_celeba"].startswith("found at") and "not implemented" in info["real_celeba"]


# --- celeba-multilabel: train + export (quick profile) ------------------------------------------------


@pytest.mark.slow
def test_celeba_quick_profile_trains_and_exports(zoo: Zoo) -> None:
    root = zoo.trained("celeba-multilabel")
    directory = root / "celeba-multilabel"
    metrics = _read(directory, "metrics.json")
    assert list(metrics)[:3] == ["test_mean_f1", "test_exact_match", "test_loss"]
    assert 0.0 <= metrics["test_mean_f1"] <= 1.0 and 0.0 <= metrics["test_exact_match"] <= 1.0
    assert list(metrics["per_label_f1"]) == [str(d) for d in range(10)]
    assert metrics["stand_in"] is True
    history = _read(directory, "history.json")
    # The quick profile only proves that it learns: 12 steps (a 4-step warm-up), the validation BCE falls
    assert len(history) == 2 and history[1]["val_loss"] < history[0]["val_loss"]
    assert all(math.isfinite(row["train_loss"]) and math.isfinite(row["val_loss"]) for row in history)
    record = _read(directory, "train.json")
    assert record["recipe"]["lr"] == 1e-4 and record["recipe"]["mixed_precision"].startswith("bfloat16")
    assert record["recipe"]["warmup_steps"] == 4
    assert record["dataset"]["stand_in"] is True and "MNIST" in record["dataset"]["explanation"]
    assert record["labels"] == [str(d) for d in range(10)]
    assert record["parameters"] == 104_577_418  # 104,584,348 with CelebA's 40 outputs
    assert record["preprocessing"]["size"] == [256, 256]
    assert record["outputs"][0]["shape"] == ["batch", 10]

    # ~420 MB per format file (1.2 GB in all); export + check of every format took 26 s on a 2-core CPU
    zoo.exported("celeba-multilabel")
    report = _read(directory, "equivalence.json")["formats"]["onnx"]
    assert report["passed"] is True and report["heldout_top1_agreement"] == 1.0
    assert {c["runner"] for c in report["checks"]} == ORT_RUNNERS
    assert {c["input_shapes"][0][0] for c in report["checks"]} == {1, 2}
    for name, fmt in _read(directory, "equivalence.json")["formats"].items():
        assert fmt["passed"] is True and fmt["max_abs"] <= 1e-5, name
    manifest = _read(directory, "manifest.json")
    assert manifest["dataset"]["stand_in"] is True
    assert set(manifest["formats"]) == {"state_dict", "torchscript", "pt2", "onnx"}  # int8/fp16: no held-out set
