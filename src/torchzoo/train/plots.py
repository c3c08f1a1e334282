"""Training-curve plots (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from torchzoo.core.artifact import atomic_path


def plot_history(history: list[dict[str, Any]], title: str, target: Path) -> None:
    """Loss (train/val) and every ``val_*`` metric that is not a loss, per epoch, into one PNG."""
    epochs = [row["epoch"] for row in history]
    metric_keys = [k for k in history[0] if k.startswith("val_") and k != "val_loss"] if history else []
    fig, axes = plt.subplots(1, 2 if metric_keys else 1, figsize=(10 if metric_keys else 5, 3.6), squeeze=False)
    loss_ax = axes[0][0]
    loss_ax.plot(epochs, [r["train_loss"] for r in history], label="train loss")
    if history and "val_loss" in history[0]:
        loss_ax.plot(epochs, [r["val_loss"] for r in history], label="val loss")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("loss")
    loss_ax.legend()
    if metric_keys:
        ax = axes[0][1]
        for key in metric_keys:
            ax.plot(epochs, [r[key] for r in history], label=key)
        ax.set_xlabel("epoch")
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def confusion_png(counts: np.ndarray, labels: list[str]) -> bytes:
    """The char-RNN tutorial's confusion plot: rows (true class) normalized to 1, as a PNG."""
    totals = counts.sum(axis=1, keepdims=True)
    rates = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    fig, ax = plt.subplots(figsize=(7, 6.4))
    image = ax.matshow(rates, vmin=0.0, vmax=1.0)
    fig.colorbar(image)
    ax.set_xticks(range(len(labels)), labels, rotation=90)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()
