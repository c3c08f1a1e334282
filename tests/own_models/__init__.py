"""Models written here, not in torchzoo: what a user brings to ``torchzoo.package`` (tests/test_own_model.py
and the runtime tests use them). Each covers a case of issue #28's checks: two inputs (int64 ids + a float
mask) and two outputs; a conv net with BatchNorm and Dropout; an ``nn.TransformerEncoder`` with a dynamic
sequence axis; a regression model. ``build(name)`` returns (module, example inputs, package keywords), seeded.
``make_all(root)`` packages every one into ``root`` from Python and writes each one's saved ``.pt2``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

VOCAB = 50


class TokensAndMask(nn.Module):
    """Bag of embeddings under a float mask: class logits and the masked token states (two outputs)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        states = self.embed(ids) * mask.unsqueeze(-1)
        pooled = states.sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)
        return self.head(pooled), states


class SmallConv(nn.Module):
    """Conv + BatchNorm + Dropout: different in train mode; exported and checked in eval mode."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.5)
        )
        self.classifier = nn.Linear(8 * 8 * 8, 5)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(image).flatten(1))


class Encoder(nn.Module):
    """An nn.TransformerEncoder over a dynamic sequence: per-token vectors (a tensor task)."""

    def __init__(self) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.encoder(tokens)


class Regressor(nn.Module):
    """Two hidden layers to one value per sample, on float64 features."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1)).double()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)


def _tokens_and_mask() -> tuple[nn.Module, tuple, dict[str, Any]]:
    ids = torch.randint(0, VOCAB, (4, 6))
    mask = torch.ones(4, 6)
    mask[0, 4:] = 0
    keywords = {
        "task": "classification",
        "labels": ["red", "green", "blue"],
        "dynamic_dims": {"ids": {1: ("seq", 1, 32)}, "mask": {1: "seq"}},
        "output_names": ["scores", "states"],
        "value_ranges_": {"ids": (0, VOCAB - 1)},
    }
    return TokensAndMask(), (ids, mask), keywords


def _small_conv() -> tuple[nn.Module, tuple, dict[str, Any]]:
    model = SmallConv()
    model.train()  # left in train mode, as after training: package must export it in eval mode
    with torch.no_grad():  # running statistics that are not the defaults
        model.features[1].running_mean.uniform_(-0.5, 0.5)
        model.features[1].running_var.uniform_(0.5, 2.0)
    images = torch.randn(8, 3, 16, 16)
    targets = torch.randint(0, 5, (8,))
    keywords = {"task": "classification", "heldout": (images, targets)}
    return model, (images[:2],), keywords


def _encoder() -> tuple[nn.Module, tuple, dict[str, Any]]:
    keywords = {"task": "tensor", "dynamic_dims": {"tokens": {1: ("seq", 2, 24)}}}
    return Encoder(), (torch.randn(3, 7, 16),), keywords


def _regressor() -> tuple[nn.Module, tuple, dict[str, Any]]:
    features = torch.randn(64, 4, dtype=torch.float64)
    targets = features.sum(1, keepdim=True).numpy()
    return Regressor(), (features[:5],), {"task": "regression", "heldout": (features, targets)}


BUILDERS: dict[str, Callable[[], tuple[nn.Module, tuple, dict[str, Any]]]] = {
    "tokens-mask": _tokens_and_mask,
    "small-conv": _small_conv,
    "encoder": _encoder,
    "regressor": _regressor,
}


def build(name: str) -> tuple[nn.Module, tuple, dict[str, Any]]:
    torch.manual_seed(sum(map(ord, name)))
    return BUILDERS[name]()


def save_program(name: str, path: Path) -> Path:
    """The model's ExportedProgram, saved with torch.export.save (what a user hands ``torchzoo export``)."""
    model, example, keywords = build(name)
    model.eval()
    dims = {k: dict(v) for k, v in keywords.get("dynamic_dims", {}).items()}
    names = list(inspect.signature(model.forward).parameters)
    shapes: dict[str, dict[int, Any]] = {}
    made: dict[str, Any] = {"batch": torch.export.Dim("batch")}
    for input_name in names:
        axes = {0: made["batch"]}
        for axis, dim in dims.get(input_name, {}).items():
            dim_name, low, high = dim if isinstance(dim, tuple) else (dim, None, None)
            if dim_name not in made:
                made[dim_name] = torch.export.Dim(dim_name, min=low or 1, max=high or 1024)
            axes[axis] = made[dim_name]
        shapes[input_name] = axes
    example = tuple(t.repeat(2, *([1] * (t.ndim - 1))) if t.shape[0] == 1 else t for t in example)
    program = torch.export.export(model, example, dynamic_shapes=shapes)
    torch.export.save(program, str(path))
    return path


def package(name: str, root: Path, **extra: Any) -> Any:
    import torchzoo

    model, example, keywords = build(name)
    return torchzoo.package(model, example, name=name, artifacts_dir=root, **{**keywords, **extra})
