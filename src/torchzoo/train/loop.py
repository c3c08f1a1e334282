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
    run = TrainingRun(model, optimizer, loss_fn, config, scheduler)
    resumable = checkpoint.next_checkpoint()
    if resumable is not None and resumable[1] is not None:
        run.resume(resumable[1])
    for epoch in range(run.first_epoch, config.epochs + 1):
        if run.stopped:
            break
        row = run.epoch(epoch, train_batches, validate)
        if resumable is not None:
            checkpoint.save(resumable[0], run.checkpoint_state(epoch))
        if on_epoch is not None:
            on_epoch(epoch, config.epochs, row)
    run.finish()
    return run.history


class TrainingRun:
    """One call of :func:`fit`: the model, its optimizer, scheduler and loss, and what the loop carries from
    epoch to epoch (history, best monitored value and weights, epochs without improvement, stop flag),
    which is also what a checkpoint saves."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        config: LoopConfig,
        scheduler: Any | None,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.config = config
        self.scheduler = scheduler
        self.history: list[dict[str, Any]] = []
        self.best_value = -np.inf if config.mode == "max" else np.inf
        self.best_state = copy.deepcopy(model.state_dict())
        self.stale, self.first_epoch, self.stopped = 0, 1, False

    def resume(self, saved: dict[str, Any]) -> None:
        """Continue from a checkpoint: weights, optimizer, scheduler, bookkeeping and RNG states."""
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(saved["scheduler"])
        self.history, self.best_value, self.best_state = saved["history"], saved["best_value"], saved["best_state"]
        self.stale, self.first_epoch, self.stopped = saved["stale"], saved["epoch"] + 1, saved["stopped"]
        checkpoint.restore_rng(saved["rng"])

    def checkpoint_state(self, epoch: int) -> dict[str, Any]:
        """What :meth:`resume` needs to continue after ``epoch``."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "history": self.history,
            "best_value": self.best_value,
            "best_state": self.best_state,
            "stale": self.stale,
            "epoch": epoch,
            "stopped": self.stopped,
        }

    def epoch(
        self,
        epoch: int,
        train_batches: Callable[[int], Iterable[Batch]],
        validate: Callable[[], dict[str, float]],
    ) -> dict[str, Any]:
        """Train one epoch, validate, record the history row and the best weights; returns the row."""
        start = time.perf_counter()
        self.model.train()
        train_loss, iteration_losses = self.train_epoch(train_batches(epoch))
        if self.scheduler is not None:
            self.scheduler.step()
        self.model.eval()
        row = {"epoch": epoch, "train_loss": train_loss, **validate()}
        row["seconds"] = time.perf_counter() - start
        row["iteration_losses"] = iteration_losses
        self.history.append(row)
        self.track_best(row)
        return row

    def train_epoch(self, batches: Iterable[Batch]) -> tuple[float, list[float]]:
        """One optimizer step per batch; the epoch's mean training loss (per sample) and every step's loss."""
        total, count = 0.0, 0
        iteration_losses: list[float] = []
        for inputs, target in batches:
            iteration_losses.append(self.step(inputs, target))
            total += iteration_losses[-1] * len(target)
            count += len(target)
        return total / max(count, 1), iteration_losses

    def step(self, inputs: tuple[torch.Tensor, ...], target: torch.Tensor) -> float:
        """Forward (under autocast when configured; the loss in float32), backward, clip, step."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.config.autocast is None:
            loss = self.loss_fn(self.model(*inputs), target)
        else:
            with torch.autocast(target.device.type, dtype=self.config.autocast):
                output = self.model(*inputs)
            loss = self.loss_fn(output.float(), target)
        loss.backward()
        if self.config.clip_grad_norm:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip_grad_norm)
        self.optimizer.step()
        return loss.item()

    def track_best(self, row: dict[str, Any]) -> None:
        """Keep the weights of the best monitored value so far (the negated training loss when the row has
        no such metric); count epochs without improvement and stop after ``patience`` of them."""
        value = row.get(self.config.monitor, -row["train_loss"])
        if _better(value, self.best_value, self.config.mode):
            self.best_value, self.stale = value, 0
            self.best_state = copy.deepcopy(self.model.state_dict())
        else:
            self.stale += 1
        self.stopped = self.config.patience is not None and self.stale >= self.config.patience

    def finish(self) -> None:
        """Restore the best weights (unless ``restore_best`` is off) and leave the model in eval mode."""
        if self.config.restore_best:
            self.model.load_state_dict(self.best_state)
        self.model.eval()


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
