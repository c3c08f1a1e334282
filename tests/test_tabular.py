"""The small tabular families: linreg, house (6 final activations), moons (float64), wine.

Trains each model on the quick profile (session fixture ``zoo``), checks the metric it must reach,
that every export format passed its equivalence check, and what the manifest must say (float64
tolerance, preprocessing that reproduces the model inputs). The custom activations are unit-tested
directly: the branch guards keep NaN out of outputs and gradients, eager and TorchScript agree.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from torchzoo.core.feature_codec import standardize
from torchzoo.train.activations import LOG_FLOOR, BentIdentity, SoftExponential, SoftExponential2

FORMATS = ("state_dict", "torchscript", "onnx")
HOUSE = [f"house-{k}" for k in ("linear", "relu", "prelu", "softexp", "softexp2")]


def read(root: Path, name: str, file: str) -> dict[str, Any]:
    return json.loads((root / name / file).read_text())


# --- quick-profile outcomes ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ["linreg", "linreg-linear"])
def test_linreg_predicts_ten_at_five(zoo, name: str) -> None:
    metrics = read(zoo.trained(name), name, "metrics.json")
    assert next(iter(metrics)) == "prediction_at_5"
    assert abs(metrics["prediction_at_5"] - 10.0) <= 0.05
    assert metrics["abs_error_at_5"] == pytest.approx(abs(metrics["prediction_at_5"] - 10.0))


@pytest.mark.slow
@pytest.mark.parametrize("name", HOUSE)
def test_house_fits_prices(zoo, name: str) -> None:
    root = zoo.trained(name)
    metrics = read(root, name, "metrics.json")
    assert next(iter(metrics)) == "final_mse"
    assert metrics["final_mse"] <= 0.2
    record = read(root, name, "train.json")
    assert record["dataset"]["stand_in"] is True
    assert record["labels"] == []
    assert record["preprocessing"]["kind"] == "features"
    assert record["preprocessing"]["std"] is not None


@pytest.mark.slow
def test_house_bent_identity_learns(zoo) -> None:
    """Bent identity starts far off (slope ~1.5 at the bias start of 8); 100 steps must halve its error."""
    metrics = read(zoo.trained("house-bentid"), "house-bentid", "metrics.json")
    assert metrics["final_mse"] <= 0.5 * metrics["initial_mse"]


@pytest.mark.slow
def test_moons_accuracy(zoo) -> None:
    metrics = read(zoo.trained("moons"), "moons", "metrics.json")
    assert next(iter(metrics)) == "test_accuracy"
    assert metrics["test_accuracy"] >= 0.8
    assert metrics["test_size"] == 200


@pytest.mark.slow
def test_wine_accuracy(zoo) -> None:
    metrics = read(zoo.trained("wine"), "wine", "metrics.json")
    assert next(iter(metrics)) == "test_accuracy"
    assert metrics["test_accuracy"] >= 0.85


# --- export -------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ["linreg", "linreg-linear", *HOUSE, "house-bentid", "moons", "wine"])
def test_export_passes_every_format(zoo, name: str) -> None:
    root = zoo.exported(name)
    equivalence = read(root, name, "equivalence.json")
    for fmt in FORMATS:
        report = equivalence["formats"][fmt]
        assert report["passed"] is True, (fmt, report["error"])
        assert report["checks"], fmt
    kinds = {case["kind"] for case in equivalence["cases"]}
    assert kinds == {"heldout", "random"}
    batches = {case["input_shapes"][0][0] for case in equivalence["cases"]}
    assert 1 in batches and max(batches) > 1
    manifest = read(root, name, "manifest.json")
    assert set(FORMATS) <= set(manifest["formats"])


@pytest.mark.slow
def test_moons_float64_tolerance_recorded(zoo) -> None:
    root = zoo.exported("moons")
    equivalence = read(root, "moons", "equivalence.json")
    for fmt in FORMATS:
        report = equivalence["formats"][fmt]
        assert report["tolerance_abs"] == 1e-10
        assert report["tolerance_reason"] == "float64 model"
        assert report["heldout_top1_agreement"] == 1.0
    manifest = read(root, "moons", "manifest.json")
    assert manifest["inputs"][0]["dtype"] == "float64"
    assert manifest["outputs"][0]["dtype"] == "float64"
    assert manifest["preprocessing"]["dtype"] == "float64"
    assert manifest["labels"] == ["moon 0", "moon 1"]


@pytest.mark.slow
def test_house_softexp_checks_both_sides_of_its_domain(zoo) -> None:
    """The far random case reaches past the soft exponential's domain end (checked, with its own
    tolerance, in every format), and its outputs there are finite."""
    root = zoo.exported("house-softexp")
    equivalence = read(root, "house-softexp", "equivalence.json")
    far = [c["name"] for c in equivalence["cases"] if c["name"].startswith("random_far")]
    assert far
    for fmt in FORMATS:
        assert far[0] in equivalence["formats"][fmt]["case_tolerances"]
        assert math.isfinite(equivalence["formats"][fmt]["max_abs"])
    model = torch.jit.load(str(root / "house-softexp" / "model.torchscript.pt"))
    alpha = read(root, "house-softexp", "metrics.json")["parameters"]["activation.alpha"][0]
    assert alpha < 0  # the learned curve is on its logarithmic side
    with torch.no_grad():
        out = model(torch.linspace(-64.0, 16.0, 81).reshape(-1, 1))
    assert torch.isfinite(out).all()
    assert out.min() == pytest.approx(math.log(LOG_FLOOR) / abs(alpha), rel=1e-5)  # the floor is reached


@pytest.mark.slow
def test_wine_preprocessing_reproduces_model_inputs(zoo) -> None:
    """The manifest's features entry (MulTransform folded into std) gives the training pipeline's inputs
    bit for bit."""
    from torchzoo.train.wine import MUL_FACTOR, WineData, stacked

    root = zoo.trained("wine")
    params = read(root, "wine", "train.json")["preprocessing"]
    data = WineData(seed=0)
    splits = data.splits
    assert params["n_features"] == 13
    assert params["std"] == [s / MUL_FACTOR for s in splits.std]
    pipeline = stacked(splits.dataset(splits.x_test, splits.y_test))[0].numpy()
    assert np.array_equal(standardize(splits.x_test, params), pipeline)
    assert np.array_equal(standardize(splits.x_val, params), data.val[0].numpy())


# --- activations (no training) ------------------------------------------------------------------------


def classic_softexp(alpha: float, x: np.ndarray) -> np.ndarray:
    if alpha < 0:
        return -np.log(1 - alpha * (x + alpha)) / alpha
    if alpha == 0:
        return x
    return (np.exp(alpha * x) - 1) / alpha + alpha


@pytest.mark.parametrize("alpha", [-0.9, -0.2, 0.0, 0.3])
def test_soft_exponential_matches_formula_and_stays_finite(alpha: float) -> None:
    module = SoftExponential(alpha)
    x = torch.linspace(-40.0, 20.0, 601, dtype=torch.float64, requires_grad=True)
    out = module.double()(x)
    out.sum().backward()
    assert torch.isfinite(out).all()
    assert torch.isfinite(x.grad).all()
    assert torch.isfinite(module.alpha.grad).all()
    xs, a = x.detach().numpy(), module.alpha.item()  # alpha as stored (float32 -0.9, then float64)
    inside = (1 - a * (xs + a)) > LOG_FLOOR if a < 0 else np.ones_like(xs, dtype=bool)
    np.testing.assert_allclose(out.detach().numpy()[inside], classic_softexp(a, xs[inside]), rtol=1e-12)
    if a < 0:
        assert (~inside).any()
        np.testing.assert_allclose(out.detach().numpy()[~inside], math.log(LOG_FLOOR) / abs(a))
    scripted = torch.jit.script(SoftExponential(alpha))
    x32 = x.detach().float()
    assert torch.equal(scripted(x32), SoftExponential(alpha)(x32))


def test_soft_exponential_2_is_c1_at_the_pivot_and_finite() -> None:
    module = SoftExponential2(0.1, 7.0)
    x = torch.tensor([7.0 - 1e-6, 7.0, 7.0 + 1e-6], dtype=torch.float64)
    np.testing.assert_allclose(module(x).numpy(), x.numpy(), atol=1e-11)  # value beta, slope 1 at beta
    wide = torch.linspace(-1000.0, 60.0, 1001, requires_grad=True)
    out = module(wide)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(wide.grad).all()
    assert torch.all(out[1:] > out[:-1])  # increasing
    scripted = torch.jit.script(module)
    assert torch.equal(scripted(wide.detach()), module(wide.detach()))
    with pytest.raises(ValueError):
        SoftExponential2(0.0, 7.0)


def test_bent_identity() -> None:
    x = torch.tensor([-3.0, 0.0, 3.0])
    expected = (torch.sqrt(x * x + 1) - 1) / 2 + x
    assert torch.equal(BentIdentity()(x), expected)
    assert BentIdentity()(torch.tensor(0.0)).item() == 0.0
