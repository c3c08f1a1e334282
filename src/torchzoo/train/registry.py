"""The one table that names every model; it drives train, export, list and predict. Torch-free.

A row names its family module (``torchzoo.train.<family>``), imported only when the model is used,
so listing or resolving names never pays for importing torch.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from torchzoo.core.errors import UserInputError

if TYPE_CHECKING:
    from torchzoo.train.family import Family


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str
    task: str  # classification | binary | multilabel | regression
    dataset: str
    summary: str
    options: dict[str, Any] = field(default_factory=dict)

    def load_family(self) -> Family:
        """The family object for this model: the module's ``family_for(spec)`` where a module holds
        several (variants whose input/output specs differ), else its ``FAMILY``."""
        module = importlib.import_module(f"torchzoo.train.{self.family}")
        return module.family_for(self) if hasattr(module, "family_for") else module.FAMILY


_HOUSE_ACTIVATIONS = {
    "linear": "no final activation",
    "relu": "ReLU",
    "prelu": "PReLU",
    "bentid": "Bent identity",
    "softexp": "Soft Exponential (learnable alpha, starts at -0.9)",
    "softexp2": "Soft Exponential 2 alone (alpha 0.1, beta 7.0, inverted form)",
}
_MLP_VARIANTS = {
    "": {"activation": "relu", "depth": 4},
    "-sigmoid": {"activation": "sigmoid", "depth": 4},
    "-tanh": {"activation": "tanh", "depth": 4},
    "-elu": {"activation": "elu", "depth": 4},
    "-leakyrelu": {"activation": "leakyrelu", "depth": 4},
    "-depth3": {"activation": "relu", "depth": 3},
    "-depth5": {"activation": "relu", "depth": 5},
    "-depth7": {"activation": "relu", "depth": 7},
}
_MNIST = "MNIST (60,000 train / 10,000 test digits)"

MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="linreg",
        family="linreg",
        task="regression",
        dataset="X=[1,2,3,4], Y=2X (the tutorial's toy data)",
        summary="f = w*x: one weight, no bias (the tutorial's from-scratch model)",
        options={"layer": "weight"},
    ),
    ModelSpec(
        name="linreg-linear",
        family="linreg",
        task="regression",
        dataset="X=[1,2,3,4], Y=2X (the tutorial's toy data)",
        summary="nn.Linear(1, 1) on the same data",
        options={"layer": "linear"},
    ),
    *(
        ModelSpec(
            name=f"house-{key}",
            family="house",
            task="regression",
            dataset="house prices: the tutorial's 12 price/size points",
            summary=f"Linear(1,1) (w=-0.01, b=8) + final activation: {what}",
            options={"activation": key},
        )
        for key, what in _HOUSE_ACTIVATIONS.items()
    ),
    ModelSpec(
        name="moons",
        family="moons",
        task="binary",
        dataset="two moons (sklearn make_moons: 1000 points, noise 0.3)",
        summary="Linear(2,2) - BentID - Linear(2,1) - Sigmoid, float64, early stopping",
    ),
    ModelSpec(
        name="wine",
        family="wine",
        task="classification",
        dataset="UCI wine (178 x 13, 3 cultivars; shipped with scikit-learn)",
        summary="NeuralNet2: 13 -> hidden ReLU -> 3, standardized features",
    ),
    ModelSpec(
        name="mnist-ffnn",
        family="mnist_ffnn",
        task="classification",
        dataset=_MNIST,
        summary="NeuralNet2: 784 -> hidden ReLU -> 10",
        options={"head": "multiclass"},
    ),
    ModelSpec(
        name="mnist-binary",
        family="mnist_ffnn",
        task="binary",
        dataset=_MNIST + ", relabelled even/odd",
        summary="NeuralNet1: 784 -> hidden ReLU -> 1, Sigmoid, BCE (is the digit even?)",
        options={"head": "binary"},
    ),
    *(
        ModelSpec(
            name=f"mnist-mlp{suffix}",
            family="mnist_mlp",
            task="classification",
            dataset=_MNIST,
            summary=f"Flatten, MLP with {opts['depth']} linear layers, {opts['activation']} activations",
            options=opts,
        )
        for suffix, opts in _MLP_VARIANTS.items()
    ),
    *(
        ModelSpec(
            name=f"mnist-{cell}",
            family="mnist_rnn",
            task="classification",
            dataset=_MNIST + ", image rows as a 28-step sequence",
            summary=f"nn.{cell.upper()}(28, 128, 2 layers, batch_first) + Linear(128, 10) on the last step",
            options={"cell": cell},
        )
        for cell in ("rnn", "gru", "lstm")
    ),
    ModelSpec(
        name="cifar10-cnn",
        family="cifar",
        task="classification",
        dataset="CIFAR-10 subset: 10,000 train (1,000/class), full 10,000 test; rebuilt from JPEG copies",
        summary="the tutorial's Net: conv(3,6,5)-pool-conv(6,16,5)-pool-120-84-10",
    ),
    ModelSpec(
        name="celeba-multilabel",
        family="celeba",
        task="multilabel",
        dataset="STAND-IN for CelebA (absent here): 256x256 RGB canvases of 1-4 real MNIST digits",
        summary="MultiClassifier: 4 conv blocks (64-128-256-512) + 512*14*14-1024-256-N, Sigmoid, BCE",
    ),
    ModelSpec(
        name="names",
        family="names",
        task="classification",
        dataset="names (18 languages, 20,068 surnames)",
        summary="char-RNN from scratch: i2h/i2o over one-hot letters + 128-wide hidden, LogSoftmax",
    ),
)

_BY_NAME = {spec.name: spec for spec in MODELS}


def names() -> list[str]:
    return [spec.name for spec in MODELS]


def get(name: str) -> ModelSpec:
    """The spec for ``name``, or a one-line error suggesting the closest known name."""
    if name in _BY_NAME:
        return _BY_NAME[name]
    close = difflib.get_close_matches(name, _BY_NAME, n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else f"; known models: {', '.join(_BY_NAME)}"
    raise UserInputError(f"unknown model '{name}'{hint}")


def resolve(name: str) -> list[ModelSpec]:
    """``all`` -> every model; otherwise the one named."""
    return list(MODELS) if name == "all" else [get(name)]
