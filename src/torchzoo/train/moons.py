"""Two moons with a bent-identity network in float64 (the custom-activations lab's classifier).

``Linear(2, 2) - BentIdentity - Linear(2, 1) - Sigmoid``, every parameter and input float64
(``model.double()``). Data: scikit-learn ``make_moons(1000, noise=0.3, random_state=seed)``; 80/20
stratified train/test split, then 20% of train for validation. Adam lr 0.01, BCE, early stopping on
the validation loss with the best epoch's weights restored.

The recipe (:class:`MoonsRecipe`) takes full-batch steps, waits long for an improvement and keeps the best
of several starts, because the network often settles on a near-linear plateau before it finds the better
basin (measurements and the reasoning: ``docs/recipes.md``). A restart after the first re-initialises the
weights from a seed derived from the run's seed. The quick profile is one short run.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import make_moons
from sklearn.model_selection import train_test_split
from torch import nn

from torchzoo.core.feature_codec import feature_params, standardize
from torchzoo.core.tensor_spec import TensorSpec
from torchzoo.train import loop
from torchzoo.train.activations import BentIdentity
from torchzoo.train.family import CheckCase, Family, TrainContext, TrainResult, standard_check_cases
from torchzoo.train.recipe import Recipe
from torchzoo.train.spec import ModelSpec

N_SAMPLES, NOISE = 1000, 0.3
PREPROCESSING = feature_params(
    ["x1", "x2"], None, None, "float64", "the point's two coordinates as given, float64: no scaling"
)


@dataclass(frozen=True, kw_only=True)
class MoonsRecipe(Recipe):
    """How the moons network trains: full-batch Adam with early stopping, the best of ``restarts`` starts."""

    optimizer: str
    lr: float
    loss: str
    batch_size: str  # in words: every step takes the whole training split
    max_epochs: int
    patience: int
    restarts: int
    early_stopping: str
    dtype: str


FULL_RECIPE = MoonsRecipe(
    optimizer="Adam",
    lr=0.01,
    loss="BCELoss",
    batch_size="full (640 training points): one step per epoch",
    max_epochs=5000,
    patience=2000,
    restarts=3,
    early_stopping="on val_loss, best epoch restored; of the restarts, the lowest val_loss is kept",
    dtype="float64",
)
QUICK_RECIPE = replace(FULL_RECIPE, max_epochs=300, patience=100, restarts=1)

#: random check inputs: a box around both moons (the data spans about [-2, 3] x [-1.7, 2.2])
RANDOM_LOW, RANDOM_HIGH = np.array([-3.0, -2.5]), np.array([4.0, 3.0])


class MoonsNet(nn.Module):
    """Linear(2, 2) - BentIdentity - Linear(2, 1) - Sigmoid: P(moon 1) for a point."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(2, 2)
        self.bent = BentIdentity()
        self.out = nn.Linear(2, 1)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.out(self.bent(self.hidden(points))))


class MoonsSplits:
    def __init__(self, seed: int) -> None:
        x, y = make_moons(N_SAMPLES, noise=NOISE, random_state=seed)
        x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, stratify=y, random_state=seed)
        x_train, x_val, y_train, y_val = train_test_split(
            x_train, y_train, test_size=0.2, stratify=y_train, random_state=seed
        )
        self.train = _tensors(x_train, y_train)
        self.val = _tensors(x_val, y_val)
        self.test = _tensors(x_test, y_test)


def _tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(standardize(x, PREPROCESSING)), torch.from_numpy(y.astype(np.float64)).reshape(-1, 1)


class MoonsFamily(Family):
    inputs = (TensorSpec("points", ("batch", 2), "float64", "(x1, x2) coordinates"),)
    outputs = (TensorSpec("prob", ("batch", 1), "float64", "probability of moon 1"),)
    output_transform = "identity"
    tolerance = 1e-10
    tolerance_reason = "float64 model"

    def build_model(self, spec: ModelSpec) -> nn.Module:
        return MoonsNet().double()

    def load_data(self, spec: ModelSpec, data_dir: Path | None, seed: int) -> MoonsSplits:
        return MoonsSplits(seed)

    def labels(self, data: MoonsSplits) -> list[str]:
        return ["moon 0", "moon 1"]

    def preprocessing(self, spec: ModelSpec) -> dict[str, Any]:
        return PREPROCESSING

    def dataset_info(self, spec: ModelSpec, data: MoonsSplits) -> dict[str, Any]:
        return {
            "name": spec.dataset,
            "stand_in": False,
            "generator": f"sklearn.datasets.make_moons({N_SAMPLES}, noise={NOISE}, random_state=<seed>)",
            "splits": {"train": len(data.train[1]), "val": len(data.val[1]), "test": len(data.test[1])},
        }

    def fit(self, spec: ModelSpec, model: nn.Module, data: MoonsSplits, ctx: TrainContext) -> TrainResult:
        recipe = QUICK_RECIPE if ctx.quick else FULL_RECIPE
        best_state, best_loss, history, runs = None, float("inf"), [], []
        for restart in range(recipe.restarts):
            if restart:
                torch.manual_seed(ctx.seed * 1000 + restart)
                for layer in (model.hidden, model.out):
                    layer.reset_parameters()
            optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
            config = loop.LoopConfig(epochs=recipe.max_epochs, patience=recipe.patience, monitor="val_loss", mode="min")
            run_history = loop.fit_tensors(
                model,
                optimizer,
                F.binary_cross_entropy,
                data.train,
                data.val,
                config,
                spec.task,
                batch_size=len(data.train[1]),
                seed=ctx.seed * 1000 + restart,
                on_epoch=ctx.on_epoch,
            )
            val = loop.evaluate(model, data.val, F.binary_cross_entropy, spec.task)
            runs.append(
                {"restart": restart, "epochs": len(run_history), "val_loss": val["loss"], "val_acc": val["acc"]}
            )
            if val["loss"] < best_loss:
                best_state, best_loss, history = copy.deepcopy(model.state_dict()), val["loss"], run_history
        model.load_state_dict(best_state)
        model.eval()
        test = loop.evaluate(model, data.test, F.binary_cross_entropy, spec.task)
        chosen = min(runs, key=lambda run: run["val_loss"])
        metrics = {
            "test_accuracy": test["acc"],
            "test_loss": test["loss"],
            "val_accuracy": chosen["val_acc"],
            "val_loss": chosen["val_loss"],
            "chosen_restart": chosen["restart"],
            "restarts": runs,
            "test_size": len(data.test[1]),
        }
        return TrainResult(metrics=metrics, history=history, recipe=recipe)

    def check_cases(self, data: MoonsSplits, rng: np.random.Generator) -> list[CheckCase]:
        """Held-out: the test split. Random: points uniform in a box around both moons."""
        return standard_check_cases(
            (data.test[0].numpy(),), rng, lambda r, n: (r.uniform(RANDOM_LOW, RANDOM_HIGH, size=(n, 2)),)
        )


FAMILY = MoonsFamily()

MODELS = (
    ModelSpec(
        name="moons",
        task="binary",
        dataset="two moons (sklearn make_moons: 1000 points, noise 0.3)",
        summary="Linear(2,2) - BentID - Linear(2,1) - Sigmoid, float64, early stopping",
        family=FAMILY,
    ),
)
