"""GRU and LSTM over the char-RNN tutorial's names: the tutorial's RNN/GRU/LSTM comparison (made there
on MNIST) applied to the 18-language surname data.

``nn.GRU`` / ``nn.LSTM`` (batch_first) over the one-hot letters ``[batch, seq, 57]``; names are right-padded
with all-zero rows, so each sample's length is its number of non-zero rows and the state read out is the
output at step ``length - 1`` (a ``gather``: exportable, and exact, since later padded steps cannot change
an earlier output). Then ``Linear(hidden, 18)`` and LogSoftmax, as ``names``. Split, encoding, manifest
preprocessing, check cases, sampler and metrics are ``names``' own (imported), so the runtime and every
export path treat these models like ``names``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from torchzoo.core.text_codec import ALPHABET
from torchzoo.train import names
from torchzoo.train.family import CheckCase, TrainContext, TrainResult
from torchzoo.train.spec import ModelSpec

CELLS: dict[str, type[nn.RNNBase]] = {"gru": nn.GRU, "lstm": nn.LSTM}
HIDDEN = 128
LAYERS = 1
DROPOUT = 0.0  # on the state read out, before fc (training only)

RECIPE_NOTE = (
    "chosen by measurement (GRU, hidden 128, Adam 3e-3, cosine, 16 epochs; test accuracy / balanced accuracy): "
    "natural sampling 0.824 / 0.505; the tutorial's language-uniform sampling 0.753 / 0.526; sampling weight "
    "count ** -0.7 0.738 / 0.560, ** -0.5 0.799 / 0.542; natural sampling with loss weights count ** -0.3 "
    "0.800 / 0.545, ** -0.5 0.794 / 0.572 (best epoch by val_acc; 0.784 / 0.569 by val_balanced_acc); hidden "
    "256 or dropout 0.3 gave no gain (0.787-0.808 / 0.510-0.532). The trade-off, traced by post-hoc logit "
    "adjustment of the natural-sampling GRU (log-probs - tau * log prior, tau 0 / 0.2 / 0.3 / 0.5): 0.825 / 0.510, "
    "0.820 / 0.540, 0.816 / 0.549, 0.805 / 0.573; on or below that curve: 24 epochs, 2 layers, the LSTM "
    "and loss weights count ** -0.2; a logit-adjusted loss (tau 1) lies below it (0.744 / 0.572 unadjusted). "
    "No recipe tried reaches 0.82 and 0.55 together. Best epoch by validation accuracy: the "
    "validation split has 6-8 names of the smallest languages, so its balanced accuracy is the noisier pick"
)

CHECK_RTOL = 1e-5
CHECK_REASON = (
    "log-probabilities of unlikely languages reach -10 to -15 on real names (one float32 step there ~1e-6) and "
    "onnxruntime's GRU/LSTM kernel sums in another order than torch: measured 1.1e-5 abs (8.8e-7 relative) on a "
    "7-letter held-out name (names-gru, full recipe), so cases are checked |diff| <= 1e-5 + 1e-5 * |reference|"
)
RANDOM_RTOL = 5e-4
RANDOM_REASON = (
    "random letter strings (not names) up to 64 long drive the LSTM's cell state far past real names' range, "
    "and onnxruntime's fused LSTM kernel (optimization levels extended and all) sums in another order: "
    "measured 2.5e-4 abs (1.1e-4 relative) on random 64-letter inputs (names-lstm, full recipe), so random "
    "cases are checked |diff| <= 1e-5 + 5e-4 * |reference|; held-out names keep 1e-5 + 1e-5 * |reference|"
)


class LastStepRNN(nn.Module):
    """``cell(letters)``, the output at each name's last real letter, ``fc``, LogSoftmax."""

    def __init__(
        self, cell: str, input_size: int, hidden_size: int, num_layers: int, num_classes: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.rnn = CELLS[cell](input_size, hidden_size, num_layers=num_layers, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden_size, num_classes)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, letters: torch.Tensor) -> torch.Tensor:
        """``letters``: ``[batch, seq, 57]`` one-hot, all-zero rows pad on the right -> log-probs ``[batch, 18]``."""
        out, _ = self.rnn(letters)  # no h0: zeros of the input's batch size
        lengths = (letters.sum(dim=2) > 0).sum(dim=1)
        last = (lengths - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, out.shape[2])
        return self.softmax(self.fc(self.dropout(out.gather(1, last).squeeze(1))))


class NamesRNNFamily(names.NamesFamily):
    torchscript_reason = "scripted: the sequence length and each name's last step come from the input"
    onnx_wrapper_reason = None
    onnx_exporter_reason = (
        "torch.onnx.export's default exporter: it writes nn.GRU/nn.LSTM as one ONNX GRU/LSTM node with dynamic "
        "batch and seq axes (torch 2.13; torch.export._patches' while-loop decompositions are not needed for "
        "that, measured: the same GRU/LSTM nodes and results with and without them)"
    )

    def build_model(self, spec: ModelSpec) -> nn.Module:
        cell = spec.options.get("cell", "gru")
        if cell not in CELLS:
            raise ValueError(f"unknown cell '{cell}'; choose one of {', '.join(CELLS)}")
        return LastStepRNN(cell, len(ALPHABET), HIDDEN, LAYERS, names.N_LANGUAGES, DROPOUT)

    def recipe(self, ctx: TrainContext) -> dict[str, Any]:
        return {
            "optimizer": "Adam",
            "lr": 3e-3,
            "batch_size": 64,
            "batching": "by length: names sorted into batches of similar length (shuffled per epoch)",
            "sampling": "every training name once per epoch (the data set's frequencies)",
            "sampling_power": 1.0,
            "class_weight_power": 0.5,
            "loss_weights": "NLLLoss weighted per language by count ** -0.5 (halfway to language-uniform)",
            "best_epoch_by": "val_acc",
            "epochs": 1 if ctx.quick else 16,
            "schedule": "cosine",
            "clip_grad_norm": 5.0,
            "loss": "NLLLoss",
            "note": RECIPE_NOTE,
        }

    def fit(self, spec: ModelSpec, model: nn.Module, data: names.NamesSplits, ctx: TrainContext) -> TrainResult:
        recipe = self.recipe(ctx)
        optimizer = torch.optim.Adam(model.parameters(), lr=recipe["lr"])
        counts = torch.bincount(data.train[2], minlength=names.N_LANGUAGES).float()
        weight = counts ** -recipe["class_weight_power"]
        weight = weight * len(data.train[2]) / (weight * counts).sum()

        def loss_fn(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return F.nll_loss(output, target, weight=weight)

        return names.fit_recipe(model, optimizer, loss_fn, data, recipe, ctx)

    def check_cases(self, data: names.NamesSplits, rng: np.random.Generator) -> list[CheckCase]:
        """``names``' cases (held-out and random, batch 1..256, lengths 1..64), every one checked relative."""
        cases = super().check_cases(data, rng)
        for case in cases:
            if case.kind == "random":
                case.tolerance_reason, case.rtol = RANDOM_REASON, RANDOM_RTOL
            else:
                case.tolerance_reason, case.rtol = CHECK_REASON, CHECK_RTOL
        return cases


FAMILY = NamesRNNFamily()

MODELS = tuple(
    ModelSpec(
        name=f"names-{cell}",
        task="classification",
        dataset="names (18 languages, 20,068 surnames)",
        summary=f"nn.{cell.upper()}(57, {HIDDEN}) over one-hot letters, last real step -> Linear({HIDDEN}, 18)",
        family=FAMILY,
        options={"cell": cell},
    )
    for cell in CELLS
)
