"""What the three MNIST families share: data, splits, recipe-driven training, metrics and check cases.

``mnist_ffnn``, ``mnist_mlp`` and ``mnist_rnn`` differ only in the model, the input shape, the pixel
normalization and the recipe. This module reads the four IDX files (``MNIST/raw``), turns the uint8
pixels into model input with :func:`torchzoo.core.image_codec.normalize` (the same function the runtime
applies to PNG files), holds out a fixed validation split from the training set, and trains with the
shared loop. Families subclass :class:`MnistFamily` and provide ``build_model`` and ``recipe`` (an
:class:`MnistRecipe`; how each was chosen: ``docs/recipes.md``).

Splits: the 60,000 training images are permuted once with a fixed seed (``SPLIT_SEED``, independent of
the training seed); the last 5,000 of that order are the validation split (per-epoch ``val_acc`` and the
best-epoch restore), the other 55,000 train. Test metrics are on the 10,000 official test images. The
quick profile trains on the first ``quick_train_size`` training images for one epoch (optionally at
``quick_lr``) and validates on the first 2,000 validation images; the test set is never subset.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from torchzoo.core.image_codec import image_params, normalize
from torchzoo.core.paths import find_dataset
from torchzoo.train import loop
from torchzoo.train.datasets import read_mnist
from torchzoo.train.family import CheckCase, Family, TrainContext, TrainResult, standard_check_cases
from torchzoo.train.recipe import Recipe
from torchzoo.train.spec import ModelSpec

MNIST_RAW = "MNIST/raw"
MNIST_EXPECTS = (
    "the four MNIST IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
    "t10k-labels-idx1-ubyte; .gz or unpacked), torchvision's MNIST/raw layout"
)
SIZE = (28, 28)
VAL_SIZE = 5_000
QUICK_VAL_SIZE = 2_000
SPLIT_SEED = 0
DIGITS = [str(d) for d in range(10)]
PARITY_LABELS = ["odd", "even"]
MNIST_DATASET = "MNIST (60,000 train / 10,000 test digits)"
TUTORIAL_NORMALIZATION = "ToTensor only (mean 0, std 1), as the tutorial"

Split = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True, kw_only=True)
class MnistRecipe(Recipe):
    """How an MNIST model trains: Adam through the shared loop. A family's :meth:`MnistFamily.recipe` gives
    the full profile's values; :meth:`MnistFamily.run_recipe` derives the quick profile's and adds the loss
    and the training size."""

    optimizer: str = "Adam"
    lr: float
    batch_size: int
    epochs: int
    schedule: str | None = None  # "cosine": per-epoch cosine decay from lr to 0 after the last epoch
    note: str | None = None
    details: Recipe  # the family's own fields (hidden size, widths, cell...), written in place
    quick: str | None = None  # how the quick profile differs (quick profile only)
    loss: str | None = None
    train_size: int | None = None


@dataclass
class MnistTensors:
    """Model-ready MNIST: normalized float32 inputs ``[n, *sample_shape]`` and targets per split.

    Targets are int64 digits, or for the binary (parity) task float32 ``[n, 1]``: 1.0 when even.
    """

    train: Split
    val: Split
    test: Split
    labels: list[str]
    params: dict[str, Any]
    sample_shape: tuple[int, ...]


def load_mnist_tensors(
    data_dir: Path | None, params: dict[str, Any], sample_shape: tuple[int, ...], task: str
) -> MnistTensors:
    """Read MNIST, normalize with ``params`` into ``sample_shape`` and split train/val/test."""
    data = read_mnist(find_dataset(MNIST_RAW, MNIST_EXPECTS, data_dir))

    def tensors(pixels: np.ndarray, digits: np.ndarray) -> Split:
        inputs = torch.from_numpy(normalize(pixels, params, sample_shape))
        if task == "binary":
            return inputs, torch.from_numpy((digits % 2 == 0).astype(np.float32).reshape(-1, 1))
        return inputs, torch.from_numpy(digits.astype(np.int64))

    order = np.random.default_rng(SPLIT_SEED).permutation(len(data.train.targets))
    train_index, val_index = order[:-VAL_SIZE], order[-VAL_SIZE:]
    return MnistTensors(
        train=tensors(data.train.images[train_index], data.train.targets[train_index]),
        val=tensors(data.train.images[val_index], data.train.targets[val_index]),
        test=tensors(data.test.images, data.test.targets),
        labels=PARITY_LABELS if task == "binary" else DIGITS,
        params=params,
        sample_shape=sample_shape,
    )


class MnistFamily(Family):
    """An MNIST family: subclasses set ``inputs``/``outputs``, ``sample_shape``, ``mean``/``std`` and
    ``normalization`` (how the tutorial normalizes), and implement ``build_model`` and ``recipe``."""

    sample_shape: tuple[int, ...]
    mean: float = 0.0
    std: float = 1.0
    normalization: str = "ToTensor only (pixels / 255)"
    output_transform = "softmax"
    tolerance = 4e-5
    tolerance_reason = (
        "float32 logits reach |z| ~ 40 on real digits (one ulp is 3.8e-6 at 32..64); eager (oneDNN/MKL GEMM) "
        "and onnxruntime (MLAS GEMM, fused RNN/GRU/LSTM kernels with their own tanh/sigmoid) sum the 784- and "
        "hidden-wide dot products in different orders: measured up to 1.3e-5 over the 10,000 test images "
        "(mnist-mlp, full; 1.1e-5 in the check itself for mnist-rnn and mnist-mlp-elu), i.e. ~3.5 ulps; 4e-5 "
        "is ~10 ulps, and top-1 must still agree on every held-out input"
    )
    #: training images the quick profile uses (one epoch), and its learning rate (None: the full one)
    quick_train_size: int = 10_000
    quick_lr: float | None = None

    @abstractmethod
    def recipe(self, spec: ModelSpec) -> MnistRecipe:
        """The full-profile recipe (``loss`` and ``train_size`` left unset: :meth:`run_recipe` adds them)."""

    def preprocessing(self, spec: ModelSpec) -> dict[str, Any]:
        shape = "x".join(str(s) for s in self.sample_shape)
        return image_params(
            "L",
            SIZE,
            [self.mean],
            [self.std],
            f"Greyscale 28x28 (white digit on black, as MNIST); {self.normalization}: "
            f"(pixels / 255 - {self.mean}) / {self.std}, float32, reshaped to [{shape}] per image.",
        )

    def load_data(self, spec: ModelSpec, data_dir: Path | None, seed: int) -> MnistTensors:
        return load_mnist_tensors(data_dir, self.preprocessing(spec), self.sample_shape, spec.task)

    def labels(self, data: MnistTensors) -> list[str]:
        return list(data.labels)

    def dataset_info(self, spec: ModelSpec, data: MnistTensors) -> dict[str, Any]:
        return {
            "name": spec.dataset,
            "stand_in": False,
            "files": f"{MNIST_RAW}/ (the original IDX files)",
            "splits": {"train": len(data.train[1]), "val": len(data.val[1]), "test": len(data.test[1])},
            "val_split": f"last {VAL_SIZE:,} of the training images after a fixed permutation (seed {SPLIT_SEED})",
        }

    def run_recipe(self, spec: ModelSpec, ctx: TrainContext, train_size: int) -> MnistRecipe:
        """The recipe of this run: the quick profile trains 1 epoch (at ``quick_lr`` when set); the loss
        follows the task."""
        recipe = self.recipe(spec)
        if ctx.quick:
            lr = self.quick_lr or recipe.lr
            quick = (
                f"first {self.quick_train_size:,} training images, 1 epoch, lr {lr:g}, "
                f"validation on {QUICK_VAL_SIZE:,} images; full test set"
            )
            recipe = replace(recipe, epochs=1, lr=lr, quick=quick)
        loss = "BCELoss" if spec.task == "binary" else "CrossEntropyLoss"
        return replace(recipe, loss=loss, train_size=train_size)

    def splits(self, data: MnistTensors, ctx: TrainContext) -> tuple[Split, Split]:
        """Training and validation splits of this run (the quick profile's are prefixes of the full ones)."""
        if not ctx.quick:
            return data.train, data.val
        n, n_val = self.quick_train_size, QUICK_VAL_SIZE
        return (data.train[0][:n], data.train[1][:n]), (data.val[0][:n_val], data.val[1][:n_val])

    def fit(self, spec: ModelSpec, model: torch.nn.Module, data: MnistTensors, ctx: TrainContext) -> TrainResult:
        train, val = self.splits(data, ctx)
        recipe = self.run_recipe(spec, ctx, train_size=len(train[1]))
        loss_fn = F.binary_cross_entropy if spec.task == "binary" else F.cross_entropy
        optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
        scheduler = None
        if recipe.schedule == "cosine":  # per epoch, from lr down to 0 after the last epoch
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=recipe.epochs)
        history = loop.fit_tensors(
            model,
            optimizer,
            loss_fn,
            train,
            val,
            loop.LoopConfig(epochs=recipe.epochs),
            spec.task,
            batch_size=recipe.batch_size,
            seed=ctx.seed,
            scheduler=scheduler,
            on_epoch=ctx.on_epoch,
        )
        metrics = heldout_metrics(model, data, spec.task, loss_fn)
        metrics["best_val_accuracy"] = max(row["val_acc"] for row in history)
        metrics.update(train_size=len(train[1]), val_size=len(val[1]), test_size=len(data.test[1]))
        return TrainResult(metrics=metrics, history=history, recipe=recipe)

    def check_cases(self, data: MnistTensors, rng: np.random.Generator) -> list[CheckCase]:
        """Held-out test images and uniformly random pixels, both normalized, at batch 1 and 64."""

        def random_pixels(rng: np.random.Generator, batch: int) -> tuple[np.ndarray, ...]:
            pixels = rng.integers(0, 256, size=(batch, *SIZE), dtype=np.uint8)
            return (normalize(pixels, data.params, data.sample_shape),)

        return standard_check_cases((data.test[0].numpy(),), rng, random_pixels)


def heldout_metrics(model: torch.nn.Module, data: MnistTensors, task: str, loss_fn: Any) -> dict[str, Any]:
    """Accuracy and loss on the test split, and per-class accuracy for the digit (not parity) task."""
    inputs, target = data.test
    scores = loop.predict_batches(model, ((x,) for x in inputs.split(1024)))
    metrics: dict[str, Any] = {
        "test_accuracy": loop.task_metric(task, scores, target),
        "test_loss": loss_fn(scores, target).item(),
    }
    if task != "binary":
        metrics["per_class_accuracy"] = loop.classification_metrics(scores, target, data.labels)["per_class_accuracy"]
    return metrics
