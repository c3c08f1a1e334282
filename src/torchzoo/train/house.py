"""House price from size: one ``Linear(1, 1)`` neuron plus a final activation (the custom-activations lab).

The lab fits 12 (size, price) points with a single neuron whose weight starts at -0.01 and bias at 8,
trains it with Adam (lr 0.01, 100 epochs, MSE) and compares final activations: none, ReLU, PReLU, bent
identity, soft exponential (learnable alpha from -0.9) and the "inverted" soft exponential 2 (alpha 0.1,
beta 7.0); see :mod:`torchzoo.train.activations`. Every variant keeps the ``Linear(1, 1)`` neuron:
"Soft Exponential 2 alone" is read as that activation on its own as the final activation (no second
activation after it), as the registry's summary says.

Data: the lab's own 12 points could not be found, so this family ships 12 documented STAND-IN points
(sizes in square metres, prices in units of 100,000), roughly linear with a little scatter
(``dataset_info`` says ``stand_in: True``). Sizes are standardized (mean/std of the 12 points, as the
runtime does with the recorded parameters); prices stay in raw units, which the bias start of 8 fits.

The recipe (:class:`HouseRecipe`) is the lab's, the same for every activation and both profiles; how each
activation fares on these points: ``docs/recipes.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from torchzoo.core.feature_codec import feature_params, standardize
from torchzoo.core.tensor_spec import TensorSpec
from torchzoo.train import loop
from torchzoo.train.activations import BentIdentity, SoftExponential, SoftExponential2
from torchzoo.train.family import CheckCase, Family, TrainContext, TrainResult, standard_check_cases
from torchzoo.train.recipe import Recipe
from torchzoo.train.spec import ModelSpec

#: STAND-IN data (the lab's 12 points were not found): size in m^2, price in units of 100,000
SIZES_M2 = (62.0, 75.0, 84.0, 93.0, 101.0, 110.0, 118.0, 127.0, 139.0, 150.0, 166.0, 182.0)
PRICES = (6.7, 7.0, 7.3, 7.3, 7.6, 7.9, 7.8, 8.2, 8.4, 8.6, 9.0, 9.3)
PRICE_UNIT = 100_000
WEIGHT_START, BIAS_START = -0.01, 8.0
SOFTEXP_ALPHA_START = -0.9
SOFTEXP2_ALPHA, SOFTEXP2_BETA = 0.1, 7.0
LR, EPOCHS = 0.01, 100
#: random check inputs, in standardized size units: around the data, and far out (see check_cases)
NEAR_RANGE = (-4.0, 4.0)
FAR_RANGE = (-64.0, 16.0)
FAR_SOFTEXP_TOLERANCE = 1e-4
FAR_SOFTEXP_REASON = (
    "past the soft exponential's domain end its logarithm falls to the floor log(1e-6)/|alpha|: with the learned "
    "alpha ~ -0.03 outputs reach |y| ~ 440, where one float32 step is 3.05e-5, so 1e-5 is under one ulp; "
    "1e-4 is ~3 ulps there"
)

PREPROCESSING = feature_params(
    ["size_m2"],
    [float(np.mean(SIZES_M2))],
    [float(np.std(SIZES_M2))],
    "float32",
    "house size in square metres, standardized with the mean and (population) std of the 12 training houses; "
    f"the model outputs the price in raw units of {PRICE_UNIT:,} (no target scaling)",
)


@dataclass(frozen=True, kw_only=True)
class HouseRecipe(Recipe):
    """How the single neuron trains: full-batch Adam on the 12 points, one step per epoch."""

    optimizer: str
    lr: float
    epochs: int
    loss: str
    batch: str
    init: str
    profiles: str


RECIPE = HouseRecipe(
    optimizer="Adam",
    lr=LR,
    epochs=EPOCHS,
    loss="MSELoss",
    batch="full (the 12 points), one step per epoch",
    init=f"Linear(1, 1): weight {WEIGHT_START}, bias {BIAS_START}",
    profiles="quick = full: the tutorial's 100 full-batch epochs take well under a second",
)


def make_activation(key: str) -> nn.Module:
    """The final activation named by the registry option ``activation``."""
    if key == "linear":
        return nn.Identity()
    if key == "relu":
        return nn.ReLU()
    if key == "prelu":
        return nn.PReLU()
    if key == "bentid":
        return BentIdentity()
    if key == "softexp":
        return SoftExponential(SOFTEXP_ALPHA_START)
    if key == "softexp2":
        return SoftExponential2(SOFTEXP2_ALPHA, SOFTEXP2_BETA)
    raise ValueError(f"unknown house activation {key!r}")


class HouseNet(nn.Module):
    """``activation(Linear(1, 1)(size))`` with the lab's start: weight -0.01, bias 8."""

    def __init__(self, activation: nn.Module) -> None:
        super().__init__()
        self.linear = nn.Linear(1, 1)
        with torch.no_grad():
            self.linear.weight.fill_(WEIGHT_START)
            self.linear.bias.fill_(BIAS_START)
        self.activation = activation

    def forward(self, size: torch.Tensor) -> torch.Tensor:
        return self.activation(self.linear(size))


class HouseData:
    def __init__(self, activation: str) -> None:
        self.activation = activation
        self.x = torch.from_numpy(standardize(np.array(SIZES_M2).reshape(-1, 1), PREPROCESSING))
        self.y = torch.tensor(PRICES, dtype=torch.float32).reshape(-1, 1)


class HouseFamily(Family):
    inputs = (TensorSpec("size", ("batch", 1), description="standardized house size"),)
    outputs = (TensorSpec("price", ("batch", 1), description=f"predicted price, in units of {PRICE_UNIT:,}"),)
    output_transform = "identity"

    def build_model(self, spec: ModelSpec) -> nn.Module:
        return HouseNet(make_activation(spec.options["activation"]))

    def load_data(self, spec: ModelSpec, data_dir: Path | None, seed: int) -> HouseData:
        return HouseData(spec.options["activation"])

    def labels(self, data: HouseData) -> list[str]:
        return []

    def preprocessing(self, spec: ModelSpec) -> dict[str, Any]:
        return PREPROCESSING

    def dataset_info(self, spec: ModelSpec, data: HouseData) -> dict[str, Any]:
        return {
            "name": spec.dataset,
            "stand_in": True,
            "explanation": (
                "the lab's own 12 house price/size points could not be found; these 12 points are a documented "
                "stand-in: sizes 62-182 m^2, prices 6.7-9.3 (units of 100,000), near-linear with small scatter"
            ),
            "size_m2": list(SIZES_M2),
            "price": list(PRICES),
            "price_unit": PRICE_UNIT,
        }

    def fit(self, spec: ModelSpec, model: nn.Module, data: HouseData, ctx: TrainContext) -> TrainResult:
        recipe = RECIPE  # quick = full
        initial_mse = loop.evaluate(model, (data.x, data.y), F.mse_loss, spec.task)["mse"]
        optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
        history = loop.fit_tensors(
            model,
            optimizer,
            F.mse_loss,
            (data.x, data.y),
            None,
            loop.LoopConfig(epochs=recipe.epochs, restore_best=False),
            spec.task,
            batch_size=len(data.y),
            seed=ctx.seed,
            on_epoch=ctx.on_epoch,
        )
        metrics: dict[str, Any] = {
            "final_mse": loop.evaluate(model, (data.x, data.y), F.mse_loss, spec.task)["mse"],
            "initial_mse": initial_mse,
            "parameters": {name: p.detach().reshape(-1).tolist() for name, p in model.named_parameters()},
            "evaluated_on": "the 12 training points (the lab has no test split)",
        }
        return TrainResult(metrics=metrics, history=history, recipe=recipe)

    def check_cases(self, data: HouseData, rng: np.random.Generator) -> list[CheckCase]:
        """Held-out: the 12 training points (there is no test split). Random: standardized sizes over
        [-4, 4] (around the data; soft exponential 2's pivot lies there) and a far case over [-64, 16]:
        the trained neurons reach ReLU/PReLU's kink (pre-activation 0) near -12 and the soft
        exponential's domain end near -45, so both sides of every branch point are checked."""
        low, high = NEAR_RANGE
        cases = standard_check_cases(
            (data.x.numpy(),), rng, lambda r, n: (r.uniform(low, high, size=(n, 1)).astype(np.float32),)
        )
        low, high = FAR_RANGE
        far = np.concatenate([np.linspace(low, high, 321), rng.uniform(low, high, 64)]).astype(np.float32)
        softexp = data.activation == "softexp"
        cases.append(
            CheckCase(
                f"random_far_b{len(far)}",
                (far.reshape(-1, 1),),
                "random",
                tolerance=FAR_SOFTEXP_TOLERANCE if softexp else None,
                tolerance_reason=FAR_SOFTEXP_REASON if softexp else None,
            )
        )
        return cases


FAMILY = HouseFamily()

ACTIVATION_NAMES = {
    "linear": "no final activation",
    "relu": "ReLU",
    "prelu": "PReLU",
    "bentid": "Bent identity",
    "softexp": "Soft Exponential (learnable alpha, starts at -0.9)",
    "softexp2": "Soft Exponential 2 alone (alpha 0.1, beta 7.0, inverted form)",
}
MODELS = tuple(
    ModelSpec(
        name=f"house-{key}",
        task="regression",
        dataset="house prices: the tutorial's 12 price/size points",
        summary=f"Linear(1,1) (w=-0.01, b=8) + final activation: {what}",
        family=FAMILY,
        options={"activation": key},
    )
    for key, what in ACTIVATION_NAMES.items()
)
