"""Recurrent nets on MNIST: each image is a sequence of its 28 rows (28 pixels per step).

``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM`` (input 28, hidden 128, 2 layers, batch_first) and ``Linear(128, 10)``
on the last step's output, as the tutorial. The initial hidden (and cell) state is left to the module,
which starts from zeros sized by the batch: this exports with a dynamic batch axis. Input ``[batch, 28,
28]``, pixels / 255 (the tutorial's ``ToTensor`` only); Adam lr 1e-3, batch 100; lstm and gru train 3
epochs and rnn 4 (the tutorial trains 2), with per-epoch cosine lr decay (``EPOCHS``; why:
``docs/recipes.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from torchzoo.core.tensor_spec import TensorSpec
from torchzoo.train.mnist_data import MNIST_DATASET, TUTORIAL_NORMALIZATION, MnistFamily, MnistRecipe
from torchzoo.train.recipe import Recipe
from torchzoo.train.spec import ModelSpec

SEQUENCE = 28
INPUT_SIZE = 28
HIDDEN = 128
LAYERS = 2
CELLS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
#: full-profile epochs per cell, with cosine decay of the lr
EPOCHS = {"rnn": 4, "gru": 3, "lstm": 3}
RECIPE_NOTE = (
    "the tutorial's 2 epochs at a constant lr reach lstm 0.966 / gru 0.971 / rnn 0.933 (seed 0); "
    "3 epochs (4 for rnn) with per-epoch cosine decay reach lstm 0.978 / rnn 0.966"
)


@dataclass(frozen=True, kw_only=True)
class RnnDetails(Recipe):
    """The row RNNs' own fields of their :class:`MnistRecipe`."""

    cell: str
    normalization: str


class RowRNN(nn.Module):
    """``cell(image)`` over the rows, then ``fc`` on the output of the last step."""

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int, num_classes: int) -> None:
        super().__init__()
        self.rnn = CELLS[cell](input_size, hidden_size, num_layers=num_layers, batch_first=True)
        self.fc = nn.Linear(hidden_size, num_classes)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(image)  # no h0: zeros of the input's batch size
        return self.fc(out[:, -1, :])


class RNNFamily(MnistFamily):
    inputs = (TensorSpec("image", ("batch", SEQUENCE, INPUT_SIZE), description="28 rows of 28 pixels, pixels / 255"),)
    outputs = (TensorSpec("logits", ("batch", 10), description="digit logits; softmax gives probabilities"),)
    sample_shape = (SEQUENCE, INPUT_SIZE)
    quick_train_size = 8_000
    quick_lr = 3e-3  # the quick profile's 80 steps of batch 100 need more than the tutorial's 1e-3

    def build_model(self, spec: ModelSpec) -> nn.Module:
        cell = spec.options.get("cell", "lstm")
        if cell not in CELLS:
            raise ValueError(f"unknown cell '{cell}'; choose one of {', '.join(CELLS)}")
        return RowRNN(cell, INPUT_SIZE, HIDDEN, LAYERS, 10)

    def recipe(self, spec: ModelSpec) -> MnistRecipe:
        cell = spec.options.get("cell", "lstm")
        return MnistRecipe(
            lr=1e-3,
            batch_size=100,
            epochs=EPOCHS[cell],
            schedule="cosine",
            note=RECIPE_NOTE,
            details=RnnDetails(
                cell=f"nn.{cell.upper()}({INPUT_SIZE}, {HIDDEN}, num_layers={LAYERS}, batch_first=True)",
                normalization=TUTORIAL_NORMALIZATION,
            ),
        )


FAMILY = RNNFamily()

MODELS = tuple(
    ModelSpec(
        name=f"mnist-{cell}",
        task="classification",
        dataset=MNIST_DATASET + ", image rows as a 28-step sequence",
        summary=f"nn.{cell.upper()}(28, 128, 2 layers, batch_first) + Linear(128, 10) on the last step",
        family=FAMILY,
        options={"cell": cell},
    )
    for cell in ("rnn", "gru", "lstm")
)
