"""Train registered models and write their artifact directories (state_dict, records, curves).

Files written to ``artifacts/<model>/``: ``model.pt`` (state_dict), ``train.json`` (everything export
needs to rebuild and describe the model), ``metrics.json``, ``history.json`` and ``curves.png``.
"""

from __future__ import annotations

import contextlib
import platform
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from torchzoo import __version__
from torchzoo.core import artifact
from torchzoo.core.errors import ArtifactError
from torchzoo.train import checkpoint
from torchzoo.train.family import TrainContext
from torchzoo.train.plots import plot_history
from torchzoo.train.spec import ModelSpec

SINGLE_THREAD_BELOW = 1_000_000  # parameters


@dataclass
class TrainOutcome:
    spec: ModelSpec
    seconds: float
    metrics: dict[str, Any] | None = None
    error: str | None = None


@contextlib.contextmanager
def training_threads(model: torch.nn.Module) -> Iterator[int]:
    """Train small models on one intra-op thread (a second costs them more than it gives, and on a busy
    machine far more); larger ones on torch's default. Yields the thread count used."""
    previous = torch.get_num_threads()
    small = sum(p.numel() for p in model.parameters()) < SINGLE_THREAD_BELOW
    threads = 1 if small else previous
    torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        torch.set_num_threads(previous)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train_model(spec: ModelSpec, ctx: TrainContext, artifacts_dir: Path, data_dir: Path | None = None) -> TrainOutcome:
    """Train one model and write its artifact directory; returns its metrics.

    ``train_seconds`` times loading the data and training, not importing the family's module. Small
    models train on one thread: for them a second intra-op thread costs more than it gives.
    """
    family = spec.family
    start = time.perf_counter()
    seed_everything(ctx.seed)
    data = family.load_data(spec, data_dir, ctx.seed)
    seed_everything(ctx.seed)
    model = family.build_model(spec)
    parameters = sum(p.numel() for p in model.parameters())
    fingerprint = {"model": spec.name, "profile": ctx.profile, "seed": ctx.seed}
    with (
        checkpoint.checkpointing(artifacts_dir / checkpoint.CHECKPOINTS / spec.name, ctx.resume, fingerprint),
        training_threads(model) as threads,
    ):
        result = family.fit(spec, model, data, ctx)
    seconds = time.perf_counter() - start

    record = {
        "model": spec.name,
        "family": type(family).__module__,
        "task": spec.task,
        "summary": spec.summary,
        "options": spec.options,
        "dataset": family.dataset_info(spec, data),
        "profile": ctx.profile,
        "seed": ctx.seed,
        "labels": family.labels(data),
        "inputs": [t.to_json() for t in family.inputs],
        "outputs": [t.to_json() for t in family.outputs],
        "preprocessing": family.preprocessing(spec),
        "postprocessing": {"output": family.outputs[0].name, "transform": family.output_transform},
        "recipe": result.recipe.to_json(),
        "metrics": result.metrics,
        "parameters": parameters,
        "train_seconds": round(seconds, 2),
        "train_threads": threads,
        "versions": {"torchzoo": __version__, "torch": torch.__version__, "python": platform.python_version()},
    }
    # A new training invalidates every exported format: the new version holds the training files only.
    with artifact.staged(artifacts_dir, spec.name) as out:
        torch.save(model.state_dict(), out / artifact.STATE_DICT)
        artifact.write_json_atomic(out / artifact.HISTORY, result.history)
        artifact.write_json_atomic(out / artifact.METRICS, result.metrics)
        if result.history:
            plot_history(result.history, f"{spec.name} ({ctx.profile} profile)", out / artifact.CURVES_PNG)
        for filename, content in result.files.items():
            (out / filename).write_bytes(content)
        artifact.write_json_atomic(out / artifact.TRAIN_RECORD, record)
    return TrainOutcome(spec, seconds, result.metrics)


def load_trained(spec: ModelSpec, artifacts_dir: Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild a trained model from its artifact directory (state_dict loaded with weights_only=True)."""
    directory = artifacts_dir / spec.name
    record_path = directory / artifact.TRAIN_RECORD
    if not record_path.exists():
        raise ArtifactError(f"no trained model in {directory}; run 'torchzoo train {spec.name}' first")
    record = artifact.read_json(record_path)
    model = spec.family.build_model(spec)
    try:
        state = torch.load(directory / artifact.STATE_DICT, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as exc:  # wrong keys, truncated file, not a state_dict
        raise ArtifactError(f"cannot load {directory / artifact.STATE_DICT}: {str(exc).splitlines()[0]}") from exc
    model.eval()
    return model, record
