"""``torchzoo predict`` and the embedding API on every kind of model, with inputs a person has at hand:
PNG files the tests write from real test images, .npy batches, CSV rows, plain numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from support import Zoo, run_cli


def _predict(zoo: Zoo, model: str, *inputs: str, extra: tuple[str, ...] = ()) -> dict:
    result = run_cli("predict", model, *inputs, "--json", *extra, "--artifacts-dir", str(zoo.exported(model)))
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def _error(zoo: Zoo, model: str, *inputs: str) -> str:
    result = run_cli("predict", model, *inputs, "--artifacts-dir", str(zoo.exported(model)))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("torchzoo: error:")]
    assert len(lines) == 1
    return lines[0]


@pytest.fixture(scope="module")
def mnist_pngs(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> tuple[list[str], list[int], np.ndarray]:
    from torchzoo.train.datasets import read_mnist

    test = read_mnist(data_root / "MNIST" / "raw").test
    folder = tmp_path_factory.mktemp("mnist_png")
    paths = []
    for i in range(8):
        path = folder / f"digit_{i}_label{test.targets[i]}.png"
        Image.fromarray(test.images[i]).save(path)
        paths.append(str(path))
    return paths, test.targets[:8].tolist(), test.images[:8]


def test_mnist_pngs_predict_their_digits(zoo: Zoo, mnist_pngs: tuple) -> None:
    paths, labels, _ = mnist_pngs
    results = _predict(zoo, "mnist-mlp", *paths)["results"]
    assert [r["input"] for r in results] == paths
    predicted = [int(r["label"]) for r in results]
    assert sum(p == t for p, t in zip(predicted, labels, strict=True)) >= 6  # quick profile: ~0.9 accuracy


def test_mnist_npy_batch_equals_png_files(zoo: Zoo, mnist_pngs: tuple, tmp_path: Path) -> None:
    paths, _, images = mnist_pngs
    np.save(tmp_path / "batch.npy", images)
    from_png = _predict(zoo, "mnist-mlp", *paths)["results"]
    from_npy = _predict(zoo, "mnist-mlp", str(tmp_path / "batch.npy"))["results"]
    assert [r["input"] for r in from_npy] == [f"{tmp_path / 'batch.npy'}[{i}]" for i in range(8)]
    for a, b in zip(from_png, from_npy, strict=True):
        assert a["label"] == b["label"]
        assert a["top"][0]["probability"] == pytest.approx(b["top"][0]["probability"], abs=1e-6)


def test_mnist_colour_and_odd_sized_images_are_converted(zoo: Zoo, mnist_pngs: tuple, tmp_path: Path) -> None:
    paths, _labels, images = mnist_pngs
    big = Image.fromarray(images[0]).resize((280, 280)).convert("RGBA")
    big.save(tmp_path / "big_rgba.png")
    Image.fromarray(images[0]).convert("RGB").save(tmp_path / "digit.jpg", quality=95)
    Image.new("L", (1, 1), 0).save(tmp_path / "one_pixel.png")
    results = _predict(zoo, "mnist-mlp", *(str(tmp_path / n) for n in ("big_rgba.png", "digit.jpg", "one_pixel.png")))[
        "results"
    ]
    plain = _predict(zoo, "mnist-mlp", paths[0])["results"][0]
    assert results[1]["label"] == plain["label"]  # a JPEG of the same digit
    assert len(results) == 3


def test_mnist_rnn_and_binary_predict(zoo: Zoo, mnist_pngs: tuple) -> None:
    paths, labels, _ = mnist_pngs
    lstm = _predict(zoo, "mnist-lstm", *paths)["results"]
    assert sum(int(r["label"]) == t for r, t in zip(lstm, labels, strict=True)) >= 4
    binary = _predict(zoo, "mnist-binary", *paths, extra=("--threshold", "0.5"))["results"]
    for r in binary:
        assert r["label"] == ("even" if r["probability"] >= 0.5 else "odd")
    assert sum(r["label"] == ("even" if t % 2 == 0 else "odd") for r, t in zip(binary, labels, strict=True)) >= 6


def test_bad_images_are_refused(zoo: Zoo, tmp_path: Path) -> None:
    (tmp_path / "not_an_image.png").write_text("hello")
    assert "not a readable image" in _error(zoo, "mnist-mlp", str(tmp_path / "not_an_image.png"))
    assert "no such image file" in _error(zoo, "mnist-mlp", str(tmp_path / "missing.png"))
    np.save(tmp_path / "wrong.npy", np.zeros((2, 5, 5), np.uint8))
    assert "expected [n, 1, 28, 28]" in _error(zoo, "mnist-mlp", str(tmp_path / "wrong.npy"))


def test_cifar_png_predicts_a_class(zoo: Zoo, tmp_path: Path) -> None:
    from torchzoo.train.datasets import read_cifar10

    test = read_cifar10(zoo.data / "cifar-10-batches-py").test
    paths = []
    for i in range(6):
        Image.fromarray(test.images[i].transpose(1, 2, 0)).save(tmp_path / f"c{i}.png")
        paths.append(str(tmp_path / f"c{i}.png"))
    results = _predict(zoo, "cifar10-cnn", *paths, extra=("--top-k", "2"))["results"]
    classes = {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}
    assert all(r["label"] in classes and len(r["top"]) == 2 for r in results)


def test_wine_csv_rows_predict_their_cultivar(zoo: Zoo, tmp_path: Path) -> None:
    from sklearn.datasets import load_wine

    wine = load_wine()
    picks = [0, 1, 60, 61, 130, 131]
    csv = tmp_path / "wine.csv"
    lines = [",".join(wine.feature_names)] + [",".join(map(str, wine.data[i])) for i in picks]
    csv.write_text("\n".join(lines) + "\n")
    results = _predict(zoo, "wine", str(csv))["results"]
    assert len(results) == 6
    manifest = json.loads((zoo.exported("wine") / "wine" / "manifest.json").read_text())
    predicted = [manifest["labels"].index(r["label"]) for r in results]
    assert sum(p == wine.target[i] for p, i in zip(predicted, picks, strict=True)) >= 5
    row = ",".join(map(str, wine.data[0]))
    assert _predict(zoo, "wine", row)["results"][0]["label"] == results[0]["label"]


@pytest.mark.parametrize(
    ("row", "says"),
    [
        ("1,2,3", "has 3 values"),
        ("nan," + ",".join(["1"] * 12), "not a finite number"),
        ("a," * 12 + "b", "not a number"),
    ],
)
def test_bad_wine_rows_are_refused(zoo: Zoo, row: str, says: str) -> None:
    assert says in _error(zoo, "wine", row)


def test_bad_wine_csv_is_refused(zoo: Zoo, tmp_path: Path) -> None:
    (tmp_path / "short.csv").write_text("1,2,3\n4,5,6\n")
    assert "3 columns; the model takes 13" in _error(zoo, "wine", str(tmp_path / "short.csv"))


def test_regression_and_moons_take_numbers(zoo: Zoo) -> None:
    value = _predict(zoo, "linreg", "5")["results"][0]["value"]
    assert value == pytest.approx(10.0, abs=0.05)
    values = [r["value"] for r in _predict(zoo, "house-linear", "80", "150")["results"]]
    assert values[0] != values[1]
    moons = _predict(zoo, "moons", "0,0.5", "1.5,-0.5")["results"]
    assert {r["label"] for r in moons} <= {"moon 0", "moon 1"} and all(0 <= r["probability"] <= 1 for r in moons)
    assert "has 1 values" in _error(zoo, "moons", "0.5")
    assert "not a number" in _error(zoo, "linreg", "five")


def test_api_predicts_from_copied_artifacts(zoo: Zoo, mnist_pngs: tuple, tmp_path: Path) -> None:
    import shutil

    from torchzoo.serve_cli import load

    shutil.copytree(zoo.exported("mnist-mlp") / "mnist-mlp", tmp_path / "digits")
    model = load(tmp_path / "digits")
    paths, _labels, images = mnist_pngs
    by_path = model.predict(paths)
    by_array = model.predict([images])  # a uint8 batch straight from numpy
    assert [r["label"] for r in by_path] == [r["label"] for r in by_array]
    assert isinstance(by_path[0]["top"][0]["probability"], float)


@pytest.mark.slow
def test_celeba_stand_in_canvas_predicts_label_sets(zoo: Zoo, tmp_path: Path) -> None:
    """The multi-label model through the CLI and the API: a stand-in canvas saved as PNG (any size: the
    runtime resizes to 256x256), every label scored, --threshold decides the set."""
    from torchzoo.serve_cli import load
    from torchzoo.train.celeba import DigitCanvases
    from torchzoo.train.datasets import read_mnist

    pixels, _ = DigitCanvases(read_mnist(zoo.data / "MNIST" / "raw").test, seed=7, stream=9).draw(0)
    image = Image.fromarray(pixels.transpose(1, 2, 0))
    image.save(tmp_path / "canvas.png")
    image.resize((300, 300)).save(tmp_path / "canvas_300.jpg")
    paths = [str(tmp_path / "canvas.png"), str(tmp_path / "canvas_300.jpg")]
    for threshold in ("0.0", "1.0"):
        results = _predict(zoo, "celeba-multilabel", *paths, extra=("--threshold", threshold))["results"]
        for r in results:
            assert sorted(r["all"]) == [str(d) for d in range(10)]
            assert all(0.0 <= p <= 1.0 for p in r["all"].values())
            expected = [d for d, p in r["all"].items() if p >= float(threshold)]
            assert r["labels"] == expected
    assert _predict(zoo, "celeba-multilabel", paths[0], extra=("--threshold", "0.0"))["results"][0]["labels"] == [
        str(d) for d in range(10)
    ]
    model = load(zoo.exported("celeba-multilabel") / "celeba-multilabel")
    assert model.predict(paths[0], threshold=0.5)[0]["all"] == pytest.approx(results[0]["all"], abs=1e-6)
