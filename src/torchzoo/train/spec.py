"""The registry row type: one trainable, exportable model. Imports nothing else of the package, so
family modules (which declare rows) and the registry (which collects them) never import each other."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelSpec:
    """One model: its name, task (a key of :data:`torchzoo.core.tasks.TASKS`), data and architecture in
    words, the family object that builds, trains and exports it, options that pick its variant, and (for a
    long one) how long its full profile took on this project's 2-core CPU, shown while it trains."""

    name: str
    task: str  # classification | binary | multilabel | regression
    dataset: str
    summary: str
    family: Any = field(compare=False, repr=False)  # a torchzoo.train.family.Family
    options: dict[str, Any] = field(default_factory=dict)
    full_profile_time: str | None = None
