"""UCI wine with the Dataset/DataLoader/transforms tutorial's pipeline and the softmax tutorial's NeuralNet2.

Data: ``sklearn.datasets.load_wine`` (178 wines x 13 measurements, 3 cultivars; ships with
scikit-learn, no download), split with a FIXED seed (stratified: 20% test, then 20% of the rest for
validation), so the standardization parameters do not depend on the training seed.

Pipeline, as the tutorial writes it: a ``WineDataset`` whose samples pass through a composed
transform, ``ToTensor`` then ``MulTransform(factor)``, batched by ``torch.utils.data.DataLoader``. The
rows the dataset holds are standardized features (training-split mean and std, via
:func:`torchzoo.core.feature_codec.standardize`), so the model sees ``factor * (x - mean) / std``. The
runtime gets the same numbers from the manifest: the factor is folded into the recorded std
(``std / factor``). With a power-of-two factor (2 here) that fold is exact in binary floating point,
so ``standardize(raw, preprocessing)`` reproduces the training inputs bit for bit; other factors
are refused.

Model: ``NeuralNet2`` of the softmax/cross-entropy tutorial (13 -> 5 hidden, ReLU -> 3 logits; no
softmax in the model: ``CrossEntropyLoss`` applies it, and the runtime's ``output_transform`` is
``softmax``). The recipe: :data:`FULL_RECIPE` (``docs/recipes.md``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, Dataset

from torchzoo.core.feature_codec import feature_params, standardize
from torchzoo.core.tensor_spec import TensorSpec
from torchzoo.train import loop
from torchzoo.train.family import CheckCase, Family, TrainContext, TrainResult, standard_check_cases
from torchzoo.train.recipe import Recipe
from torchzoo.train.spec import ModelSpec

SPLIT_SEED = 0
MUL_FACTOR = 2.0
HIDDEN = 5
LABELS = ["cultivar 1", "cultivar 2", "cultivar 3"]

Sample = tuple[Any, Any]


@dataclass(frozen=True, kw_only=True)
class WineRecipe(Recipe):
    """How NeuralNet2 trains on the wine rows: Adam, small batches, the best validation loss kept."""

    optimizer: str
    lr: float
    loss: str
    batch_size: int
    epochs: int
    hidden_size: int
    transforms: str
    selection: str


FULL_RECIPE = WineRecipe(
    optimizer="Adam",
    lr=0.01,
    loss="CrossEntropyLoss",
    batch_size=4,
    epochs=60,
    hidden_size=HIDDEN,
    transforms=f"ToTensor, MulTransform({MUL_FACTOR:g}) on standardized rows",
    selection="best validation loss restored",
)
QUICK_RECIPE = replace(FULL_RECIPE, epochs=8)


class ToTensor:
    """``(features, target)`` numpy -> torch tensors (the tutorial's transform)."""

    def __call__(self, sample: Sample) -> Sample:
        inputs, target = sample
        return torch.from_numpy(np.asarray(inputs)), torch.as_tensor(target)


class MulTransform:
    """Multiply the features by ``factor`` (the tutorial's transform); a power of two, so the runtime
    can fold it into the standardization exactly (see :func:`folded_std`)."""

    def __init__(self, factor: float) -> None:
        mantissa, _ = math.frexp(factor)
        if factor <= 0 or mantissa != 0.5:
            raise ValueError(f"MulTransform factor must be a positive power of two (exact fold), got {factor}")
        self.factor = factor

    def __call__(self, sample: Sample) -> Sample:
        inputs, target = sample
        return inputs * self.factor, target


class Compose:
    """Apply transforms in order (torchvision's ``Compose``, without the torchvision dependency)."""

    def __init__(self, transforms: Sequence[Callable[[Sample], Sample]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, sample: Sample) -> Sample:
        for transform in self.transforms:
            sample = transform(sample)
        return sample


class WineDataset(Dataset):
    """Wine rows (already standardized) and cultivar indices; ``transform`` maps each sample."""

    def __init__(
        self, features: np.ndarray, targets: np.ndarray, transform: Callable[[Sample], Sample] | None = None
    ) -> None:
        self.x = features
        self.y = targets.astype(np.int64)
        self.n_samples = len(targets)
        self.transform = transform

    def __getitem__(self, index: int) -> Sample:
        sample = self.x[index], self.y[index]
        return self.transform(sample) if self.transform else sample

    def __len__(self) -> int:
        return self.n_samples


def folded_std(std: Sequence[float], factor: float) -> list[float]:
    """The std to record so that ``(x - mean) / recorded`` equals ``factor * (x - mean) / std`` exactly."""
    return [s / factor for s in std]


class NeuralNet2(nn.Module):
    """The softmax tutorial's NeuralNet2: Linear - ReLU - Linear, logits out (no softmax)."""

    def __init__(self, input_size: int, hidden_size: int, num_classes: int) -> None:
        super().__init__()
        self.linear1 = nn.Linear(input_size, hidden_size)
        self.relu = nn.ReLU()
        self.linear2 = nn.Linear(hidden_size, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.relu(self.linear1(features)))


class WineSplits:
    """Raw rows of each split (fixed-seed stratified split) and the standardization of the train split."""

    def __init__(self) -> None:
        wine = load_wine()
        x, y = wine.data, wine.target
        self.feature_names = [str(n) for n in wine.feature_names]
        x_rest, self.x_test, y_rest, self.y_test = train_test_split(
            x, y, test_size=0.2, stratify=y, random_state=SPLIT_SEED
        )
        self.x_train, self.x_val, self.y_train, self.y_val = train_test_split(
            x_rest, y_rest, test_size=0.2, stratify=y_rest, random_state=SPLIT_SEED
        )
        self.mean = self.x_train.mean(axis=0).tolist()
        self.std = self.x_train.std(axis=0).tolist()

    def dataset(self, x_raw: np.ndarray, y: np.ndarray) -> WineDataset:
        """The tutorial's pipeline: standardized rows, then ToTensor and MulTransform per sample."""
        standardized = feature_params(self.feature_names, self.mean, self.std, "float32", "")
        return WineDataset(
            standardize(x_raw, standardized), y, transform=Compose([ToTensor(), MulTransform(MUL_FACTOR)])
        )

    def preprocessing(self) -> dict[str, Any]:
        return feature_params(
            self.feature_names,
            self.mean,
            folded_std(self.std, MUL_FACTOR),
            "float32",
            "the 13 wine measurements in scikit-learn's load_wine order, standardized with the training split's "
            f"mean and (population) std and multiplied by the tutorial's MulTransform factor {MUL_FACTOR:g}: the "
            f"factor is folded into the recorded std (std / {MUL_FACTOR:g}), exact for a power of two, so these "
            "parameters reproduce the training inputs bit for bit",
        )


@functools.cache
def wine_splits() -> WineSplits:
    return WineSplits()


def stacked(dataset: WineDataset) -> tuple[torch.Tensor, torch.Tensor]:
    """Every sample of ``dataset`` through its transforms, as one (inputs, targets) pair."""
    inputs, targets = zip(*(dataset[i] for i in range(len(dataset))), strict=True)
    return torch.stack(inputs), torch.stack(targets)


class WineData:
    def __init__(self, seed: int) -> None:
        self.splits = wine_splits()
        self.train = self.splits.dataset(self.splits.x_train, self.splits.y_train)
        self.val = stacked(self.splits.dataset(self.splits.x_val, self.splits.y_val))
        self.test = stacked(self.splits.dataset(self.splits.x_test, self.splits.y_test))
        self.seed = seed


class WineFamily(Family):
    inputs = (TensorSpec("features", ("batch", 13), description="standardized wine measurements x 2"),)
    outputs = (TensorSpec("logits", ("batch", 3), description="cultivar logits"),)
    output_transform = "softmax"

    def build_model(self, spec: ModelSpec) -> nn.Module:
        return NeuralNet2(13, HIDDEN, 3)

    def load_data(self, spec: ModelSpec, data_dir: Path | None, seed: int) -> WineData:
        return WineData(seed)

    def labels(self, data: WineData) -> list[str]:
        return list(LABELS)

    def preprocessing(self, spec: ModelSpec) -> dict[str, Any]:
        return wine_splits().preprocessing()

    def dataset_info(self, spec: ModelSpec, data: WineData) -> dict[str, Any]:
        return {
            "name": spec.dataset,
            "stand_in": False,
            "source": "sklearn.datasets.load_wine (UCI wine recognition data, shipped with scikit-learn)",
            "split": f"stratified, fixed random_state={SPLIT_SEED}: 20% test, then 20% of the rest for validation",
            "splits": {"train": len(data.train), "val": len(data.val[1]), "test": len(data.test[1])},
        }

    def fit(self, spec: ModelSpec, model: nn.Module, data: WineData, ctx: TrainContext) -> TrainResult:
        recipe = QUICK_RECIPE if ctx.quick else FULL_RECIPE
        loader = DataLoader(
            data.train,
            batch_size=recipe.batch_size,
            shuffle=True,
            generator=torch.Generator().manual_seed(ctx.seed),
        )

        def batches(epoch: int) -> Iterable[loop.Batch]:
            for inputs, target in loader:
                yield (inputs,), target

        def validate() -> dict[str, float]:
            return {f"val_{k}": v for k, v in loop.evaluate(model, data.val, F.cross_entropy, spec.task).items()}

        optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
        config = loop.LoopConfig(epochs=recipe.epochs, monitor="val_loss", mode="min")
        history = loop.fit(model, optimizer, F.cross_entropy, batches, validate, config, on_epoch=ctx.on_epoch)
        scores = loop.predict_batches(model, [(data.test[0],)])
        metrics = loop.classification_metrics(scores, data.test[1], LABELS)
        return TrainResult(
            metrics={
                "test_accuracy": metrics["accuracy"],
                "per_class_accuracy": metrics["per_class_accuracy"],
                "test_size": len(data.test[1]),
            },
            history=history,
            recipe=recipe,
        )

    def check_cases(self, data: WineData, rng: np.random.Generator) -> list[CheckCase]:
        """Held-out: the test split. Random: model-space inputs ~ N(0, 2^2) per feature (standardized x 2)."""
        return standard_check_cases(
            (data.test[0].numpy(),),
            rng,
            lambda r, n: (r.normal(0.0, MUL_FACTOR, size=(n, 13)).astype(np.float32),),
        )


FAMILY = WineFamily()

MODELS = (
    ModelSpec(
        name="wine",
        task="classification",
        dataset="UCI wine (178 x 13, 3 cultivars; shipped with scikit-learn)",
        summary="NeuralNet2: 13 -> hidden ReLU -> 3, standardized features",
        family=FAMILY,
    ),
)
