"""The feed-forward nets of the tutorial, on MNIST: NeuralNet2 (multiclass) and NeuralNet1 (binary).

``head="multiclass"`` (``mnist-ffnn``): NeuralNet2, ``784 -> 500 ReLU -> 10`` logits, CrossEntropyLoss.
``head="binary"`` (``mnist-binary``): NeuralNet1, ``784 -> 500 ReLU -> 1`` then Sigmoid, BCELoss, on the
question "is the digit even?" (labels ``["odd", "even"]``). Both take the flattened image ``[batch, 784]``
normalized as the tutorial does (``ToTensor`` only: pixels / 255, i.e. mean 0, std 1) and train with the
tutorial's recipe: Adam lr 1e-3, batch 100, 2 epochs (``docs/recipes.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from torchzoo.core.tensor_spec import TensorSpec
from torchzoo.train.mnist_data import MNIST_DATASET, TUTORIAL_NORMALIZATION, MnistFamily, MnistRecipe
from torchzoo.train.recipe import Recipe
from torchzoo.train.spec import ModelSpec

INPUT_SIZE = 784
HIDDEN = 500


class NeuralNet2(nn.Module):
    """The tutorial's multiclass net: ``l1 -> ReLU -> l2`` logits (softmax lives in the loss)."""

    def __init__(self, input_size: int, hidden_size: int, num_classes: int) -> None:
        super().__init__()
        self.l1 = nn.Linear(input_size, hidden_size)
        self.relu = nn.ReLU()
        self.l2 = nn.Linear(hidden_size, num_classes)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.l2(self.relu(self.l1(image)))


class NeuralNet1(nn.Module):
    """The tutorial's binary net: ``l1 -> ReLU -> l2 -> Sigmoid``, one probability per sample."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.l1 = nn.Linear(input_size, hidden_size)
        self.relu = nn.ReLU()
        self.l2 = nn.Linear(hidden_size, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.l2(self.relu(self.l1(image))))


@dataclass(frozen=True, kw_only=True)
class FfnnDetails(Recipe):
    """The feed-forward nets' own fields of their :class:`MnistRecipe`."""

    hidden_size: int
    normalization: str
    target: str


_OUTPUTS = {
    "multiclass": (TensorSpec("logits", ("batch", 10), description="digit logits; softmax gives probabilities"),),
    "binary": (TensorSpec("probability", ("batch", 1), description="P(the digit is even), after Sigmoid"),),
}
_TRANSFORMS = {"multiclass": "softmax", "binary": "identity"}


class FFNNFamily(MnistFamily):
    """One family object per head (``FAMILIES``): the two heads differ in outputs and transform."""

    inputs = (TensorSpec("image", ("batch", INPUT_SIZE), description="flattened 28x28 image, pixels / 255"),)
    sample_shape = (INPUT_SIZE,)

    def __init__(self, head: str) -> None:
        self.head = head
        self.outputs = _OUTPUTS[head]
        self.output_transform = _TRANSFORMS[head]
        if head == "binary":  # a probability in [0, 1]: no large values to excuse a wider tolerance
            self.tolerance, self.tolerance_reason = 1e-5, "float32 probabilities"

    def build_model(self, spec: ModelSpec) -> nn.Module:
        if self.head == "binary":
            return NeuralNet1(INPUT_SIZE, HIDDEN)
        return NeuralNet2(INPUT_SIZE, HIDDEN, 10)

    def recipe(self, spec: ModelSpec) -> MnistRecipe:
        target = "digit is even (1.0) / odd (0.0)" if self.head == "binary" else "digit 0-9"
        return MnistRecipe(
            lr=1e-3,
            batch_size=100,
            epochs=2,
            details=FfnnDetails(hidden_size=HIDDEN, normalization=TUTORIAL_NORMALIZATION, target=target),
        )


FAMILIES = {head: FFNNFamily(head) for head in _OUTPUTS}

MODELS = (
    ModelSpec(
        name="mnist-ffnn",
        task="classification",
        dataset=MNIST_DATASET,
        summary="NeuralNet2: 784 -> hidden ReLU -> 10",
        family=FAMILIES["multiclass"],
    ),
    ModelSpec(
        name="mnist-binary",
        task="binary",
        dataset=MNIST_DATASET + ", relabelled even/odd",
        summary="NeuralNet1: 784 -> hidden ReLU -> 1, Sigmoid, BCE (is the digit even?)",
        family=FAMILIES["binary"],
    ),
)
