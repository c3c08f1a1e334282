"""The names char-RNN in scan form, for the torch.export-based exporters (``.pt2`` and dynamo ONNX).

:class:`torchzoo.train.names.CharRNN` loops over the letters in Python; ``torch.export`` would unroll that
loop and fix the sequence length. :class:`ScanCharRNN` computes the same recurrence with one ``scan`` over
the sequence axis (the same ``i2h`` / ``i2o`` modules, the same padding rule), so the exported graph keeps
a dynamic length: ``torch.export`` records one ``scan`` node, ``torch.onnx.export(dynamo=True)`` one ONNX
``Scan``. The wrapper shares the trained modules; it has no weights of its own.

It lives in ``train`` (next to the model it mirrors) because the names family hands it to export through
``NamesFamily.onnx_module``; export imports train, never the reverse. ``scan`` is private in torch 2.13:
:mod:`torchzoo.train.torch_private` pins it and checks it exists (``tests/test_torch_private.py``).
"""

from __future__ import annotations

import torch
from torch import nn

from torchzoo.train.torch_private import scan


class ScanCharRNN(nn.Module):
    """``CharRNN.forward`` as ``scan(step, (hidden, output), letters, dim=1)``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.i2h, self.i2o, self.softmax = model.i2h, model.i2o, model.softmax

    def forward(self, letters: torch.Tensor) -> torch.Tensor:
        batch = letters.shape[0]
        hidden = letters.new_zeros(batch, self.i2h.out_features)
        output = letters.new_zeros(batch, self.i2o.out_features)

        def step(carry: tuple[torch.Tensor, torch.Tensor], letter: torch.Tensor):
            hidden, output = carry
            present = letter.sum(dim=1, keepdim=True) > 0  # an all-zero row pads: state and output unchanged
            combined = torch.cat([letter, hidden], dim=1)
            output = torch.where(present, self.i2o(combined), output)
            hidden = torch.where(present, self.i2h(combined), hidden)
            return (hidden, output), output.clone()  # scan stacks a per-step output; this one is unused

        (_, output), _ = scan(step, (hidden, output), letters, dim=1)
        return self.softmax(output)
