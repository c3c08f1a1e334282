"""Training-curve plots (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

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
