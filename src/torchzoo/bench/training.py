"""The names model's training time: our batched recipe vs the tutorial's one-name loop, on this machine."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from torchzoo.core.text_codec import ALPHABET, encode_names
from torchzoo.train import registry
from torchzoo.train.family import TrainContext
from torchzoo.train.names import FAMILY, HIDDEN, N_LANGUAGES, CharRNN
from torchzoo.train.runner import training_threads

TUTORIAL_STEPS = 100_000  # the tutorial trains on this many single names
TUTORIAL_LR = 0.005  # its manual SGD step
VAL_ACC_MARK = 0.75  # "time to a good model": first epoch whose validation accuracy reaches this


def _tutorial_seconds_per_step(train: list[tuple[str, int]], steps: int, seed: int) -> float:
    """The tutorial's train(): one random name, letter by letter, manual SGD; seconds per step."""
    torch.manual_seed(seed)
    model = CharRNN(len(ALPHABET), HIDDEN, N_LANGUAGES)
    rng = random.Random(seed)
    start = time.perf_counter()
    for _ in range(steps):
        name, target = rng.choice(train)
        line = torch.from_numpy(encode_names([name], strict=False))[0]
        hidden = torch.zeros(1, HIDDEN)
        model.zero_grad()
        for letter in line:
            combined = torch.cat([letter[None], hidden], 1)
            hidden, output = model.i2h(combined), model.softmax(model.i2o(combined))
        loss = nn.functional.nll_loss(output, torch.tensor([target]))
        loss.backward()
        for p in model.parameters():
            p.data.add_(p.grad.data, alpha=-TUTORIAL_LR)
    return (time.perf_counter() - start) / steps


def names_training(data_dir: Path | None, tutorial_steps: int, seed: int = 0) -> dict[str, Any]:
    """Our batched names recipe (full profile, timed end to end) vs the tutorial's loop on this machine:
    100,000 one-name SGD steps (lr 0.005), timed over ``tutorial_steps`` steps and scaled to 100,000."""
    spec = registry.get("names")
    splits = FAMILY.load_data(spec, data_dir, seed)
    train = list(zip(splits.train_names, splits.train[2].tolist(), strict=True))
    per_step = _tutorial_seconds_per_step(train, tutorial_steps, seed)

    torch.manual_seed(seed)
    ours = FAMILY.build_model(spec)
    start = time.perf_counter()
    with training_threads(ours):  # as `torchzoo train` runs it
        result = FAMILY.fit(spec, ours, splits, TrainContext(profile="full", seed=seed))
    seconds = time.perf_counter() - start
    reached = next(
        (
            sum(r["seconds"] for r in result.history[:i])
            for i, r in enumerate(result.history, 1)
            if r["val_acc"] >= VAL_ACC_MARK
        ),
        None,
    )
    return {
        "tutorial_seconds_per_step": per_step,
        "tutorial_steps_timed": tutorial_steps,
        "tutorial_seconds_100k_steps": per_step * TUTORIAL_STEPS,
        "ours_full_recipe_seconds": seconds,
        "ours_test_accuracy": result.metrics["test_accuracy"],
        "ours_seconds_to_val_acc_0.75": reached,
        "ratio_ours_over_tutorial": seconds / (per_step * TUTORIAL_STEPS),
    }
