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

from torchzoo.core.tasks import get_task
from torchzoo.train import checkpoint

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
    # mixed precision for the forward pass (e.g. torch.bfloat16); the loss is computed in float32
    autocast: torch.dtype | None = None


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
) -> list[dict[str, Any]]:
    """Train for ``config.epochs`` (or until early stopping); return one history row per epoch.

    ``train_batches(epoch)`` yields ``(inputs, target)``; ``validate()`` returns metrics prefixed
    ``val_``. Each row also keeps the training loss of every iteration (``iteration_losses``). The
    weights with the best monitored value are restored at the end. Inside
    :func:`torchzoo.train.checkpoint.checkpointing`, every epoch ends with a checkpoint and a resumed run
    continues after the last completed epoch.
    """
    history: list[dict[str, Any]] = []
    best_value = -np.inf if config.mode == "max" else np.inf
    best_state = copy.deepcopy(model.state_dict())
    stale, first, stopped = 0, 1, False
    resumable = checkpoint.next_checkpoint()
    if resumable is not None and resumable[1] is not None:
        saved = resumable[1]
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(saved["scheduler"])
        history, best_value, best_state = saved["history"], saved["best_value"], saved["best_state"]
        stale, first, stopped = saved["stale"], saved["epoch"] + 1, saved["stopped"]
        checkpoint.restore_rng(saved["rng"])
    for epoch in range(first, config.epochs + 1):
        if stopped:
            break
        start = time.perf_counter()
        model.train()
        total, count = 0.0, 0
        iteration_losses: list[float] = []
        for inputs, target in train_batches(epoch):
            optimizer.zero_grad(set_to_none=True)
            if config.autocast is None:
                loss = loss_fn(model(*inputs), target)
            else:
                with torch.autocast(target.device.type, dtype=config.autocast):
                    output = model(*inputs)
                loss = loss_fn(output.float(), target)
            loss.backward()
            if config.clip_grad_norm:
                nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad_norm)
            optimizer.step()
            iteration_losses.append(loss.item())
            total += iteration_losses[-1] * len(target)
            count += len(target)
        if scheduler is not None:
            scheduler.step()
        model.eval()
        row = {"epoch": epoch, "train_loss": total / max(count, 1), **validate()}
        row["seconds"] = time.perf_counter() - start
        row["iteration_losses"] = iteration_losses
        history.append(row)
        value = row.get(config.monitor, -row["train_loss"])
        if _better(value, best_value, config.mode):
            best_value, stale = value, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
        stopped = config.patience is not None and stale >= config.patience
        if resumable is not None:
            checkpoint.save(
                resumable[0],
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "history": history,
                    "best_value": best_value,
                    "best_state": best_state,
                    "stale": stale,
                    "epoch": epoch,
                    "stopped": stopped,
                },
            )
        if on_epoch is not None:
            on_epoch(epoch, config.epochs, row)
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


def task_metric(task: str, output: torch.Tensor, target: torch.Tensor) -> float:
    """The task's headline metric (:mod:`torchzoo.core.tasks`) of a batch of outputs."""
    return get_task(task).metric(_numpy(output), _numpy(target))


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    tensor = tensor.detach().cpu()
    return (tensor.float() if tensor.dtype in (torch.bfloat16, torch.float16) else tensor).numpy()


@torch.no_grad()
def evaluate(
    model: nn.Module,
    split: tuple[torch.Tensor, torch.Tensor],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    task: str,
    batch_size: int = 1024,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, float]:
    """``{"loss", "acc"}`` (``"mse"`` instead of acc for regression) over a split, in eval mode."""
    x, y = split
    outputs = predict_batches(
        model, ((transform(x[i]) if transform else x[i],) for i in minibatches(len(y), batch_size, None))
    )
    return {"loss": loss_fn(outputs, y).item(), get_task(task).metric_key: task_metric(task, outputs, y)}


def fit_tensors(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor] | None,
    config: LoopConfig,
    task: str,
    batch_size: int,
    seed: int = 0,
    scheduler: Any | None = None,
    on_epoch: EpochCallback | None = None,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> list[dict[str, Any]]:
    """:func:`fit` over in-memory tensors: shuffled minibatches (seeded per epoch), validation each epoch
    with ``val_loss`` and ``val_acc`` (``val_mse`` for regression). ``transform`` maps a raw batch (e.g.
    uint8 pixels) to model input, so large datasets stay compact in memory."""
    x, y = train

    def batches(epoch: int) -> Iterable[Batch]:
        for index in minibatches(len(y), batch_size, seed * 100_003 + epoch):
            inputs = transform(x[index]) if transform else x[index]
            yield (inputs,), y[index]

    def validate() -> dict[str, float]:
        if val is None:
            return {}
        scores = evaluate(model, val, loss_fn, task, transform=transform)
        return {f"val_{k}": v for k, v in scores.items()}

    return fit(model, optimizer, loss_fn, batches, validate, config, scheduler=scheduler, on_epoch=on_epoch)
