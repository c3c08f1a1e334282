"""Recurrent nets on MNIST: each image is a sequence of its 28 rows (28 pixels per step).

``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM`` (input 28, hidden 128, 2 layers, batch_first) and ``Linear(128, 10)``
on the last step's output, as the tutorial. The initial hidden (and cell) state is left to the module,
which starts from zeros sized by the batch: this exports with a dynamic batch axis. Input ``[batch, 28,
28]``, pixels / 255 (the tutorial's ``ToTensor`` only); Adam lr 1e-3, batch 100. The tutorial's 2 epochs
fall short of 0.97 here, so lstm and gru train 3 epochs and rnn 4, with per-epoch cosine lr decay (see
``EPOCHS``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from torchzoo.core.tensor_spec import TensorSpec
from torchzoo.train.family import TrainContext
from torchzoo.train.mnist_data import MNIST_DATASET, MnistFamily
from torchzoo.train.spec import ModelSpec

SEQUENCE = 28
INPUT_SIZE = 28
HIDDEN = 128
LAYERS = 2
CELLS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
#: the tutorial trains 2 epochs; measured (seed 0) that gives lstm 0.966, gru 0.971, rnn 0.933 test accuracy,
#: so here: 3 epochs (lstm, gru), 4 (the slower-learning plain rnn), with cosine decay of the lr.
EPOCHS = {"rnn": 4, "gru": 3, "lstm": 3}


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
    quick_lr = 3e-3  # 80 steps of batch 100: the tutorial lr 1e-3 is still near 0.6 there

    def build_model(self, spec: ModelSpec) -> nn.Module:
        cell = spec.options.get("cell", "lstm")
        if cell not in CELLS:
            raise ValueError(f"unknown cell '{cell}'; choose one of {', '.join(CELLS)}")
        return RowRNN(cell, INPUT_SIZE, HIDDEN, LAYERS, 10)

    def recipe(self, spec: ModelSpec, ctx: TrainContext) -> dict[str, Any]:
        cell = spec.options.get("cell", "lstm")
        return {
            "lr": 1e-3,
            "batch_size": 100,
            "epochs": EPOCHS[cell],
            "schedule": "cosine",
            "note": (
                "the tutorial's 2 epochs at a constant lr reach lstm 0.966 / gru 0.971 / rnn 0.933 (seed 0); "
                "3 epochs (4 for rnn) with per-epoch cosine decay reach lstm 0.978 / rnn 0.966"
            ),
            "cell": f"nn.{cell.upper()}({INPUT_SIZE}, {HIDDEN}, num_layers={LAYERS}, batch_first=True)",
            "normalization": "ToTensor only (mean 0, std 1), as the tutorial",
        }


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
