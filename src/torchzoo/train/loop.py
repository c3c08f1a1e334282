"""The training and evaluation loops every family shares: epochs, validation, best-checkpoint restore.

Families supply batches and a loss; this module owns the epoch loop, gradient clipping, learning-rate
schedules, early stopping and the per-epoch history that becomes ``history.json`` and the plot.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

Batch = tuple[tuple[torch.Tensor, ...], torch.Tensor]
EpochCallback = Callable[[int, int, dict[str, float]], None]


@dataclass
class LoopConfig:
    epochs: int
    clip_grad_norm: float | None = None
    patience: int | None = None  # early stopping on the monitored validation metric
    monitor: str = "val_acc"
    mode: str = "max"  # "max" for accuracy, "min" for a loss
    restore_best: bool = True


def _better(value: float, best: float, mode: str) -> bool:
    return value > best if mode == "max" else value < best


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    train_batches: Callable[[int], Iterable[Batch]],
    validate: Callable[[], dict[str, float]],
    config: LoopConfig,
    scheduler: Any | None = None,
    on_epoch: EpochCallback | None = None,
) -> list[dict[str, float]]:
    """Train for ``config.epochs`` (or until early stopping); return one history row per epoch.

    ``train_batches(epoch)`` yields ``(inputs, target)``; ``validate()`` returns metrics prefixed
    ``val_``. The weights with the best monitored value are restored at the end.
    """
    history: list[dict[str, float]] = []
    best_value = -np.inf if config.mode == "max" else np.inf
    best_state = copy.deepcopy(model.state_dict())
    stale = 0
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        model.train()
        total, count = 0.0, 0
        for inputs, target in train_batches(epoch):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(*inputs), target)
            loss.backward()
            if config.clip_grad_norm:
                nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad_norm)
            optimizer.step()
            total += loss.item() * len(target)
            count += len(target)
        if scheduler is not None:
            scheduler.step()
        model.eval()
        row = {"epoch": epoch, "train_loss": total / max(count, 1), **validate()}
        row["seconds"] = time.perf_counter() - start
        history.append(row)
        value = row.get(config.monitor, -row["train_loss"])
        if _better(value, best_value, config.mode):
            best_value, stale = value, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
        if on_epoch is not None:
            on_epoch(epoch, config.epochs, row)
        if config.patience is not None and stale >= config.patience:
            break
    if config.restore_best:
        model.load_state_dict(best_state)
    model.eval()
    return history


@torch.no_grad()
def predict_batches(model: nn.Module, batches: Iterable[tuple[torch.Tensor, ...]]) -> torch.Tensor:
    """Concatenate the model's outputs over an iterable of input tuples (eval mode, no grad)."""
    model.eval()
    return torch.cat([model(*inputs) for inputs in batches])


def classification_metrics(
    scores: torch.Tensor, target: torch.Tensor, labels: list[str] | None = None
) -> dict[str, Any]:
    """Accuracy, and per-class accuracy when ``labels`` are given."""
    predicted = scores.argmax(dim=1)
    metrics: dict[str, Any] = {"accuracy": (predicted == target).float().mean().item()}
    if labels is not None:
        per_class = {}
        for index, label in enumerate(labels):
            mask = target == index
            if mask.any():
                per_class[label] = (predicted[mask] == index).float().mean().item()
        metrics["per_class_accuracy"] = per_class
    return metrics


def minibatches(n: int, batch_size: int, seed: int | None) -> list[torch.Tensor]:
    """Index batches over ``range(n)``, shuffled with ``seed`` (None keeps order)."""
    order = torch.arange(n) if seed is None else torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return list(order.split(batch_size))
