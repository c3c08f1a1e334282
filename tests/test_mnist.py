"""The MNIST families (mnist_ffnn, mnist_mlp, mnist_rnn) on the quick profile.

A representative subset is trained and exported (every family covered): mnist-ffnn, mnist-binary,
mnist-mlp, mnist-mlp-depth3 and mnist-lstm. Every registered MNIST model is built (untrained) and run on
a random batch. Quick thresholds sit well below what the quick profile reaches (seed 0, measured):
ffnn 0.91, binary 0.91, mlp 0.90, mlp-depth3 0.90, lstm 0.78.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from torchzoo.core.image_codec import load_image, normalize
from torchzoo.train import registry
from torchzoo.train.mnist_data import VAL_SIZE, MnistFamily, MnistTensors

QUICK_THRESHOLDS = {
    "mnist-ffnn": 0.85,
    "mnist-binary": 0.85,
    "mnist-mlp": 0.85,
    "mnist-mlp-depth3": 0.85,
    "mnist-lstm": 0.6,
}
MNIST_MODELS = [s.name for s in registry.models() if isinstance(s.family, MnistFamily)]


def _read(root: Path, name: str, file: str) -> dict:
    return json.loads((root / name / file).read_text())


@pytest.fixture(scope="module")
def mnist_lstm_data(data_root: Path) -> MnistTensors:
    spec = registry.get("mnist-lstm")
    return spec.family.load_data(spec, data_root, 0)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(QUICK_THRESHOLDS))
def test_quick_profile_trains_and_exports(zoo, name: str) -> None:
    root = zoo.exported(name)
    metrics = _read(root, name, "metrics.json")
    assert metrics["test_accuracy"] >= QUICK_THRESHOLDS[name]
    assert metrics["test_size"] == 10_000
    assert metrics["val_size"] > 0 and metrics["train_size"] < 55_000  # quick: a subset of the train split
    equivalence = _read(root, name, "equivalence.json")
    assert set(equivalence["formats"]) == {"state_dict", "torchscript", "pt2", "onnx"}
    assert all(report["passed"] for report in equivalence["formats"].values())
    kinds = {case["kind"] for case in equivalence["cases"]}
    batches = {case["input_shapes"][0][0] for case in equivalence["cases"]}
    assert kinds == {"heldout", "random"} and batches == {1, 64}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(QUICK_THRESHOLDS))
def test_manifest_preprocessing_is_what_training_used(zoo, name: str) -> None:
    root = zoo.exported(name)
    manifest = _read(root, name, "manifest.json")
    spec = registry.get(name)
    family = spec.family
    assert manifest["preprocessing"] == family.preprocessing(spec)
    assert manifest["preprocessing"]["kind"] == "image" and manifest["preprocessing"]["mode"] == "L"
    assert manifest["inputs"][0]["shape"][0] == "batch"
    assert list(family.sample_shape) == manifest["inputs"][0]["shape"][1:]
    if spec.task == "binary":
        assert manifest["labels"] == ["odd", "even"]
        assert manifest["postprocessing"]["transform"] == "identity"
        assert manifest["outputs"][0]["shape"] == ["batch", 1]
    else:
        assert manifest["labels"] == [str(d) for d in range(10)]
        assert manifest["postprocessing"]["transform"] == "softmax"
        assert manifest["outputs"][0]["shape"] == ["batch", 10]
    assert manifest["recipe"]["epochs"] == 1 and "quick" in manifest["recipe"]


def test_png_through_the_manifest_params_gives_the_training_input(
    tmp_path: Path, data_root: Path, mnist_lstm_data
) -> None:
    """A test digit saved as PNG and preprocessed as the runtime does equals the tensor training used."""
    from torchzoo.core.paths import find_dataset
    from torchzoo.train.datasets import read_mnist
    from torchzoo.train.mnist_data import MNIST_EXPECTS, MNIST_RAW

    pixels = read_mnist(find_dataset(MNIST_RAW, MNIST_EXPECTS, data_root)).test.images[7]
    Image.fromarray(pixels, mode="L").save(tmp_path / "digit.png")
    for name in ("mnist-ffnn", "mnist-mlp", "mnist-lstm"):
        spec = registry.get(name)
        family = spec.family
        params = family.preprocessing(spec)
        loaded = load_image(tmp_path / "digit.png", params)
        runtime = normalize(loaded[None], params, family.sample_shape)
        training = normalize(pixels[None], params, family.sample_shape)
        np.testing.assert_array_equal(runtime, training)
    np.testing.assert_array_equal(training[0], mnist_lstm_data.test[0][7].numpy())


def test_validation_split_is_held_out_of_training(mnist_lstm_data) -> None:
    data = mnist_lstm_data
    assert len(data.val[1]) == VAL_SIZE and len(data.train[1]) == 60_000 - VAL_SIZE
    assert len(data.test[1]) == 10_000
    # no validation image is also a training image (exact duplicates aside, MNIST has none across these)
    train_keys = {hash(x.numpy().tobytes()) for x in data.train[0][:20_000]}
    assert not any(hash(x.numpy().tobytes()) in train_keys for x in data.val[0][:500])


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("name", MNIST_MODELS)
def test_every_mnist_model_builds_with_the_declared_shapes(name: str) -> None:
    spec = registry.get(name)
    family = spec.family
    model = family.build_model(spec).eval()
    shape = [3 if d == "batch" else d for d in family.inputs[0].shape]
    with torch.no_grad():
        out = model(torch.randn(*shape))
    expected = [3 if d == "batch" else d for d in family.outputs[0].shape]
    assert list(out.shape) == expected
    if spec.task == "binary":
        assert bool(((out >= 0) & (out <= 1)).all())
    torch.jit.script(model)  # the TorchScript path export takes
