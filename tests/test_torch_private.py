"""The private torch APIs torchzoo relies on (torchzoo.train.torch_private) are still there and still do
what export needs: this fails loudly when torch moves past the version they were checked against."""

from __future__ import annotations

import torch
from torch import nn

from torchzoo.train import torch_private


def test_pinned_torch_version_is_the_installed_one() -> None:
    installed = ".".join(torch.__version__.split("+")[0].split(".")[:2])
    assert installed == torch_private.PINNED_TORCH, (
        f"torch {torch.__version__} is installed but torchzoo/train/torch_private.py is pinned to "
        f"{torch_private.PINNED_TORCH}: re-check every private API listed there, then update PINNED_TORCH"
    )


def test_lstm_keeps_a_dynamic_sequence_axis_inside_the_decompositions() -> None:
    torch.manual_seed(0)
    model = nn.LSTM(3, 4, batch_first=True).eval()
    seq = torch.export.Dim("seq", min=1, max=64)
    with torch_private.rnn_while_loop_decompositions():
        program = torch.export.export(model, (torch.randn(2, 5, 3),), dynamic_shapes=({1: seq},))
    for length in (1, 9, 64):
        x = torch.randn(2, length, 3)
        torch.testing.assert_close(program.module()(x)[0], model(x)[0], rtol=0, atol=1e-6)


def test_scan_exports_with_a_dynamic_length() -> None:
    def running_sum(x: torch.Tensor) -> torch.Tensor:
        def step(carry: torch.Tensor, row: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return carry + row, carry.clone()

        final, _ = torch_private.scan(step, torch.zeros_like(x[:, 0]), x, dim=1)
        return final

    class Sum(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return running_sum(x)

    seq = torch.export.Dim("seq", min=1, max=64)
    program = torch.export.export(Sum(), (torch.randn(2, 5, 3),), dynamic_shapes=({1: seq},))
    for length in (1, 7, 40):
        x = torch.randn(2, length, 3)
        torch.testing.assert_close(program.module()(x), x.sum(dim=1), rtol=1e-6, atol=1e-6)


def test_a_fixed_length_gru_export_does_not_pin_a_later_dynamic_one() -> None:
    """mnist-gru (28 steps) then names-gru (dynamic) in one ``export all`` process: without reset_traces the
    second export fails with 'Constraints violated (seq)'."""
    torch.manual_seed(0)
    fixed, model = nn.GRU(3, 4, batch_first=True).eval(), nn.GRU(3, 4, batch_first=True).eval()
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq", min=1, max=64)
    with torch_private.rnn_while_loop_decompositions():
        torch.export.export(fixed, (torch.randn(2, 28, 3),), dynamic_shapes=({0: batch},))
    torch_private.reset_traces()
    with torch_private.rnn_while_loop_decompositions():
        program = torch.export.export(model, (torch.randn(2, 9, 3),), dynamic_shapes=({0: batch, 1: seq},))
    for length in (1, 28, 50):
        x = torch.randn(3, length, 3)
        torch.testing.assert_close(program.module()(x)[0], model(x)[0], rtol=0, atol=1e-6)
