"""A user's own code, as ``torchzoo export user_nets:build --weights ...`` imports it from the working directory
(tests/test_own_model.py copies this file into a temporary directory and runs the CLI there)."""

import torch
from torch import nn


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(20, 4)
        self.out = nn.Linear(4, 3)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.out((self.emb(ids) * mask.unsqueeze(-1)).sum(1))


def build() -> nn.Module:
    return Net()


def broken() -> nn.Module:
    raise RuntimeError("needs a GPU")
