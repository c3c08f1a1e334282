"""The multi-label CNN of the CelebA attribute tutorial ("MultiClassifier"), trained on a STAND-IN.

Architecture exactly the tutorial's: four blocks Conv2d(c_in, c_out, 3) - MaxPool2d(2) - ReLU (64, 128,
256, 512 channels, no padding) with Dropout(0.2) after the fourth block only, so a 256x256 input gives
512x14x14 feature maps (256 -> 254 -> 127 -> 125 -> 62 -> 60 -> 30 -> 28 -> 14), flattened into
Linear(512*14*14, 1024) - Linear(1024, 256) - Linear(256, N) with no activation or dropout between them,
then Sigmoid; BCELoss; Adam. About 104.6M parameters for CelebA's N=40 (almost all
in the first Linear), 104.6M - 7.7K for the stand-in's N=10.

CelebA is NOT present here (no copy could be had), so the model trains on a documented stand-in with the
same input and task shape: 256x256 RGB canvases holding 1-4 real MNIST digits at random places (each in
its own random cell of a 2x2 grid), sizes and colours on a dark background; the labels are the set of
digits present (N=10, "0".."9"). Canvases are drawn deterministically from (seed, split, index), one batch
at a time (uint8, normalized per batch with :func:`torchzoo.core.image_codec.normalize`). Training canvases use
MNIST training digits (the first 55,000), the validation canvases the last 5,000 training digits, test
canvases the MNIST test digits.

The recipe (:class:`CelebaRecipe`) is a fixed budget of fresh canvases; how it was set: ``docs/recipes.md``.

Real CelebA (N=40 attributes) is not trained by this module: the output width is fixed per family and
``build_model`` sees only the registry row, so CelebA needs its own registry row and output spec (see
:data:`CELEBA_NOT_IMPLEMENTED`). When a real copy sits at ``<data root>/celeba/`` the manifest says it was
found and not used.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.metrics import f1_score
from torch import nn

from torchzoo.core.errors import DataNotFoundError
from torchzoo.core.image_codec import image_params, normalize
from torchzoo.core.paths import data_root_candidates, find_dataset
from torchzoo.core.tensor_spec import TensorSpec
from torchzoo.train import loop
from torchzoo.train.datasets import ImageSplit, read_mnist
from torchzoo.train.family import CheckCase, Family, TrainContext, TrainResult, standard_check_cases
from torchzoo.train.recipe import Recipe
from torchzoo.train.spec import ModelSpec

CANVAS = 256
SAMPLE_SHAPE = (3, CANVAS, CANVAS)
DIGIT_LABELS = [str(d) for d in range(10)]
PREPROCESSING = image_params(
    "RGB",
    (CANVAS, CANVAS),
    (0.5, 0.5, 0.5),
    (0.5, 0.5, 0.5),
    "RGB, resized to 256x256 (bilinear), pixels/255, then (x - 0.5) / 0.5 per channel; float32 [batch, 3, 256, 256]",
)

#: the stand-in's generator settings (recorded in the manifest)
DIGITS_PER_CANVAS = (1, 4)
GRID = 2  # the canvas is a 2x2 grid of cells; each digit gets a cell of its own, at a random offset in it
CELL = CANVAS // GRID
DIGIT_SIZE = (72, 120)  # side of the (square) 28x28 MNIST digit box scaled onto the canvas, in pixels
BACKGROUND_MAX = 60  # background: one dark colour per canvas, each channel 0..60
INK_MIN = 110  # digit colour: each channel 110..255
VAL_DIGITS = 5000  # the last MNIST training digits, kept for the validation canvases
STREAMS = {"train": 0, "val": 1, "test": 2}
#: P(a given digit is on a canvas): 1-4 digits (uniform count), each one of 10 near-uniform MNIST classes
LABEL_PRIOR = 1 - sum(0.9**count for count in range(DIGITS_PER_CANVAS[0], DIGITS_PER_CANVAS[1] + 1)) / (
    DIGITS_PER_CANVAS[1] - DIGITS_PER_CANVAS[0] + 1
)

CELEBA_NOT_IMPLEMENTED = (
    "training on real CelebA (40 attributes) is not implemented: this model's output width is fixed at the "
    "stand-in's 10 digits, and a CelebA model needs its own registry row and a family whose output spec is "
    "[batch, 40] (read celeba/list_attr_celeba.txt, images from celeba/img_align_celeba/ via "
    "torchzoo.core.image_codec.load_image, which resizes them to 256x256)"
)


@dataclass(frozen=True, kw_only=True)
class CelebaRecipe(Recipe):
    """How MultiClassifier trains: a fixed budget of fresh canvases, Adam with warm-up and a final decay."""

    optimizer: str = "Adam (fused)"
    lr: float = 1e-4
    warmup_steps: int
    warmup: str = "linear from lr/100 to lr over the first warmup_steps steps (avoids the first steps' blow-up)"
    decay_steps: int
    decay: str = "lr constant after the warm-up, then linear to lr/decay_steps over the last decay_steps steps"
    loss: str = "BCELoss"
    output_bias_init: str = f"logit of the label prior {LABEL_PRIOR:.4f}"
    mixed_precision: str = "bfloat16 autocast for the training forward pass; float32 weights, loss and evaluation"
    memory_format: str = "channels_last"
    batch_size: int
    epochs: int
    steps_per_epoch: int
    val_canvases: int
    test_canvases: int
    best_epoch_restore: str = "val_loss (continuous; val F1 stays 0 while the model sits at the label prior)"
    device: str
    note: str = (
        "a fixed step budget: epochs x steps_per_epoch batches of fresh canvases, never repeated; "
        "the quick profile only proves that the model trains and exports"
    )

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch


def celeba_recipe(ctx: TrainContext, device: torch.device) -> CelebaRecipe:
    """The run's recipe: the full profile is 21 epochs of 100 steps of 8 canvases; quick a few tiny steps."""
    return CelebaRecipe(
        warmup_steps=4 if ctx.quick else 100,
        decay_steps=6 if ctx.quick else 300,
        batch_size=4 if ctx.quick else 8,
        epochs=2 if ctx.quick else 21,
        steps_per_epoch=6 if ctx.quick else 100,
        val_canvases=16 if ctx.quick else 128,
        test_canvases=32 if ctx.quick else 500,
        device=device.type,
    )


def _block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3), nn.MaxPool2d(2), nn.ReLU())


class MultiClassifier(nn.Module):
    """Four conv blocks + a three-layer head with a Sigmoid: independent probabilities per label."""

    def __init__(self, num_labels: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _block(3, 64), _block(64, 128), _block(128, 256), _block(256, 512), nn.Dropout(0.2)
        )
        self.classifier = nn.Sequential(
            nn.Linear(512 * 14 * 14, 1024),
            nn.Linear(1024, 256),
            nn.Linear(256, num_labels),
            nn.Sigmoid(),
        )
        # He initialization for the convolutions, each followed by a ReLU, so the signal keeps its scale through
        # this BatchNorm-free stack (docs/recipes.md); the Linear layers keep PyTorch's default.
        for layer in self.features.modules():
            if isinstance(layer, nn.Conv2d):
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                nn.init.zeros_(layer.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images``: normalized ``[batch, 3, 256, 256]`` -> probabilities ``[batch, num_labels]``."""
        return self.classifier(torch.flatten(self.features(images), 1))


class DigitCanvases:
    """The stand-in generator: canvas ``index`` is a pure function of (seed, stream, index).

    Each canvas has one dark background colour and 1-4 MNIST digits, each scaled to a random size (72-120
    px), placed at a random offset inside its own randomly chosen cell of a 2x2 grid (so digits never
    overlap), and painted in a random bright colour (the MNIST grey level is the alpha). Its label vector
    marks the digits present (a digit drawn twice counts once).
    """

    def __init__(self, digits: ImageSplit, seed: int, stream: int) -> None:
        self.images = digits.images
        self.targets = digits.targets
        self.seed = seed
        self.stream = stream

    def draw(self, index: int) -> tuple[np.ndarray, list[int]]:
        """One canvas: uint8 ``[3, 256, 256]`` and the digit classes drawn on it, in drawing order."""
        rng = np.random.default_rng([self.seed, self.stream, index])
        canvas = np.empty((CANVAS, CANVAS, 3), dtype=np.float32)
        canvas[:] = rng.integers(0, BACKGROUND_MAX + 1, size=3)
        count = int(rng.integers(DIGITS_PER_CANVAS[0], DIGITS_PER_CANVAS[1] + 1))
        drawn: list[int] = []
        for cell in rng.permutation(GRID * GRID)[:count]:
            pick = int(rng.integers(len(self.targets)))
            size = int(rng.integers(DIGIT_SIZE[0], DIGIT_SIZE[1] + 1))
            top, left = (int(v) * CELL for v in divmod(int(cell), GRID))
            y, x = (int(v) for v in rng.integers(0, CELL - size + 1, size=2))
            digit = Image.fromarray(self.images[pick]).resize((size, size), Image.Resampling.BILINEAR)
            alpha = np.asarray(digit, dtype=np.float32)[..., None] / 255.0
            ink = rng.integers(INK_MIN, 256, size=3).astype(np.float32)
            region = canvas[top + y : top + y + size, left + x : left + x + size]
            region *= 1.0 - alpha
            region += alpha * ink
            drawn.append(int(self.targets[pick]))
        pixels = np.clip(np.rint(canvas), 0, 255).astype(np.uint8).transpose(2, 0, 1)
        return np.ascontiguousarray(pixels), drawn

    def batch(self, indices: range | list[int]) -> tuple[np.ndarray, np.ndarray]:
        """uint8 canvases ``[n, 3, 256, 256]`` and float32 multi-hot labels ``[n, 10]``."""
        pixels = np.empty((len(indices), *SAMPLE_SHAPE), dtype=np.uint8)
        labels = np.zeros((len(indices), len(DIGIT_LABELS)), dtype=np.float32)
        for row, index in enumerate(indices):
            pixels[row], drawn = self.draw(index)
            labels[row, drawn] = 1.0
        return pixels, labels


def model_input(pixels: np.ndarray) -> torch.Tensor:
    """uint8 canvases -> normalized float32 model input, exactly as the runtime computes it."""
    return torch.from_numpy(normalize(pixels, PREPROCESSING, SAMPLE_SHAPE))


@dataclass
class StandInData:
    train: DigitCanvases
    val: DigitCanvases
    test: DigitCanvases
    digits_source: str
    real_celeba: str | None  # where a real CelebA copy was found (not used), if any


def _find_real_celeba(data_dir: Path | None) -> Path | None:
    for root in data_root_candidates(data_dir):
        directory = root / "celeba"
        if (directory / "list_attr_celeba.txt").is_file() and (directory / "img_align_celeba").is_dir():
            return directory
    return None


def multilabel_metrics(probabilities: torch.Tensor, targets: torch.Tensor) -> dict[str, Any]:
    """Mean per-label F1 (threshold 0.5), exact-match ratio and per-label F1, in that order."""
    predicted = (probabilities > 0.5).cpu().numpy().astype(int)
    truth = (targets > 0.5).cpu().numpy().astype(int)
    per_label = f1_score(truth, predicted, average=None, labels=range(truth.shape[1]), zero_division=0.0)
    return {
        "mean_f1": float(np.mean(per_label)),
        "exact_match": float(np.mean((predicted == truth).all(axis=1))),
        "per_label_f1": {label: float(f) for label, f in zip(DIGIT_LABELS, per_label, strict=True)},
    }


class CelebaFamily(Family):
    inputs = (TensorSpec("images", ("batch", *SAMPLE_SHAPE), description="normalized RGB, (x/255 - 0.5) / 0.5"),)
    outputs = (
        TensorSpec("probabilities", ("batch", len(DIGIT_LABELS)), description="independent label probabilities"),
    )
    output_transform = "identity"

    def build_model(self, spec: ModelSpec) -> nn.Module:
        model = MultiClassifier(len(DIGIT_LABELS))
        # Start the output at the stand-in's label prior (each digit is on ~22.6% of canvases) instead of 0.5,
        # so the initial BCE is the prior's (~0.53) and no step is spent learning the base rate.
        with torch.no_grad():
            model.classifier[-2].bias.fill_(math.log(LABEL_PRIOR / (1 - LABEL_PRIOR)))
        return model

    def load_data(self, spec: ModelSpec, data_dir: Path | None, seed: int) -> StandInData:
        if spec.options.get("source", "standin") != "standin":
            raise DataNotFoundError(CELEBA_NOT_IMPLEMENTED)
        raw = find_dataset("MNIST/raw", "the four MNIST IDX files (torchvision layout), for the stand-in", data_dir)
        mnist = read_mnist(raw)
        keep = len(mnist.train.targets) - VAL_DIGITS
        train = ImageSplit(mnist.train.images[:keep], mnist.train.targets[:keep])
        val = ImageSplit(mnist.train.images[keep:], mnist.train.targets[keep:])
        real = _find_real_celeba(data_dir)
        return StandInData(
            train=DigitCanvases(train, seed, STREAMS["train"]),
            val=DigitCanvases(val, seed, STREAMS["val"]),
            test=DigitCanvases(mnist.test, seed, STREAMS["test"]),
            digits_source=str(raw),
            real_celeba=None if real is None else str(real),
        )

    def labels(self, data: StandInData) -> list[str]:
        return list(DIGIT_LABELS)

    def preprocessing(self, spec: ModelSpec) -> dict[str, Any]:
        return PREPROCESSING

    def dataset_info(self, spec: ModelSpec, data: StandInData) -> dict[str, Any]:
        return {
            "name": "STAND-IN for CelebA: MNIST digit canvases",
            "stand_in": True,
            "explanation": (
                "CelebA (202,599 face photos, 40 binary attributes) is not present and no copy could be had, so "
                "this model trains on a stand-in with the same input and task shape: 256x256 RGB canvases, each "
                "holding 1-4 real MNIST digits (72-120 px) at random places (each in its own random cell of a 2x2 "
                "grid, at a random offset), sizes and bright colours on a dark background; the multi-label "
                "target is the set of digits present (10 labels, '0'..'9' instead of 40 attributes). "
                "Its metrics say nothing about faces."
            ),
            "generator": {
                "canvas": [CANVAS, CANVAS],
                "digits_per_canvas": list(DIGITS_PER_CANVAS),
                "placement": f"each digit in its own random cell of a {GRID}x{GRID} grid, random offset in it",
                "digit_size_px": list(DIGIT_SIZE),
                "background_channel_max": BACKGROUND_MAX,
                "ink_channel_min": INK_MIN,
                "deterministic": "canvas = f(seed, split, index); drawn per batch, never stored",
                "train_digits": f"MNIST train[:{len(data.train.targets):,}]",
                "val_digits": f"MNIST train[-{len(data.val.targets):,}:]",
                "test_digits": f"MNIST test ({len(data.test.targets):,})",
            },
            "digits_from": data.digits_source,
            "real_celeba": (
                "not found"
                if data.real_celeba is None
                else f"found at {data.real_celeba} but not used: {CELEBA_NOT_IMPLEMENTED}"
            ),
        }

    def fit(self, spec: ModelSpec, model: nn.Module, data: StandInData, ctx: TrainContext) -> TrainResult:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        recipe = celeba_recipe(ctx, device)
        model.to(device, memory_format=torch.channels_last)
        optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr, fused=True)

        def validate() -> dict[str, float]:
            probabilities, targets = _predict(model, data.val, recipe.val_canvases, device)
            scores = multilabel_metrics(probabilities, targets)
            return {
                "val_loss": F.binary_cross_entropy(probabilities, targets).item(),
                "val_acc": scores["exact_match"],
                "val_mean_f1": scores["mean_f1"],
            }

        config = loop.LoopConfig(epochs=recipe.epochs, monitor="val_loss", mode="min", autocast=torch.bfloat16)
        batches = TrainingCanvases(data.train, recipe, optimizer, device)
        try:
            history = loop.fit(
                model, optimizer, F.binary_cross_entropy, batches, validate, config, on_epoch=ctx.on_epoch
            )
            probabilities, targets = _predict(model, data.test, recipe.test_canvases, device)
        finally:
            model.to("cpu", memory_format=torch.contiguous_format)
        return TrainResult(metrics=heldout_metrics(probabilities, targets), history=history, recipe=recipe)

    def check_cases(self, data: StandInData, rng: np.random.Generator) -> list[CheckCase]:
        # Small on purpose: ~104.6M parameters, and every case runs in eager + 4 onnxruntime sessions.
        pixels, _ = data.test.batch(range(8))
        return standard_check_cases((model_input(pixels).numpy(),), rng, _random_images, large_batch=2)


def lr_factor(step: int, total_steps: int, warmup_steps: int, decay_steps: int) -> float:
    """The learning rate at 0-based ``step`` over ``lr``: warm-up, constant, then a linear decay (a function of
    the step alone, so a resumed run gets the same rates as an uninterrupted one)."""
    warm = min(1.0, (step + 1) / warmup_steps)
    cool = min(1.0, (total_steps - step) / decay_steps)
    return warm * cool


class TrainingCanvases:
    """The training batches of one epoch (``self(epoch)``), each a fresh run of canvases, never repeated; sets
    the optimizer's learning rate for each step (:func:`lr_factor`) before the loop takes the batch."""

    def __init__(
        self, canvases: DigitCanvases, recipe: CelebaRecipe, optimizer: torch.optim.Optimizer, device: torch.device
    ) -> None:
        self.canvases, self.recipe, self.optimizer, self.device = canvases, recipe, optimizer, device

    def __call__(self, epoch: int) -> Iterator[loop.Batch]:
        recipe = self.recipe
        for step in range(recipe.steps_per_epoch):
            global_step = (epoch - 1) * recipe.steps_per_epoch + step
            factor = lr_factor(global_step, recipe.total_steps, recipe.warmup_steps, recipe.decay_steps)
            for group in self.optimizer.param_groups:
                group["lr"] = recipe.lr * factor
            first = global_step * recipe.batch_size
            pixels, labels = self.canvases.batch(range(first, first + recipe.batch_size))
            images = model_input(pixels).to(self.device, memory_format=torch.channels_last)
            yield (images,), torch.from_numpy(labels).to(self.device)


def heldout_metrics(probabilities: torch.Tensor, targets: torch.Tensor) -> dict[str, Any]:
    """metrics.json: mean F1, exact match, loss and per-label F1 on the test canvases."""
    scores = multilabel_metrics(probabilities, targets)
    return {
        "test_mean_f1": scores["mean_f1"],
        "test_exact_match": scores["exact_match"],
        "test_loss": F.binary_cross_entropy(probabilities, targets).item(),
        "per_label_f1": scores["per_label_f1"],
        "test_size": len(targets),
        "stand_in": True,
    }


def _predict(
    model: nn.Module, canvases: DigitCanvases, count: int, device: torch.device, batch_size: int = 16
) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities and targets (both on the CPU) for canvases ``0..count-1`` of a split."""
    targets: list[np.ndarray] = []

    def batches():
        for start in range(0, count, batch_size):
            pixels, labels = canvases.batch(range(start, min(start + batch_size, count)))
            targets.append(labels)
            yield (model_input(pixels).to(device),)

    probabilities = loop.predict_batches(model, batches()).cpu()
    return probabilities, torch.from_numpy(np.concatenate(targets))


def _random_images(rng: np.random.Generator, batch: int) -> tuple[np.ndarray, ...]:
    """Random uint8 pixels, normalized like real canvases."""
    pixels = rng.integers(0, 256, size=(batch, *SAMPLE_SHAPE), dtype=np.uint8)
    return (normalize(pixels, PREPROCESSING, SAMPLE_SHAPE),)


FAMILY = CelebaFamily()

MODELS = (
    ModelSpec(
        name="celeba-multilabel",
        task="multilabel",
        dataset="STAND-IN for CelebA (absent here): 256x256 RGB canvases of 1-4 real MNIST digits",
        summary="MultiClassifier: 4 conv blocks (64-128-256-512) + 512*14*14-1024-256-N, Sigmoid, BCE",
        family=FAMILY,
        full_profile_time="about 43 min on 2 CPU cores",
    ),
)
