"""The models ``torchzoo bench`` measures, and what it measures them with besides their graph: a zoo model (its
registry row: the trained weights, held-out inputs from its check cases) or a model packaged from one's own code
(``torchzoo.package``: its saved ExportedProgram as the eager module, and inputs made from its manifest's specs:
integer zeros, floats from a standard normal, dynamic dims at a small size within the export's bounds)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from torchzoo.core import artifact
from torchzoo.core.tensor_spec import example_arrays
from torchzoo.train import registry
from torchzoo.train.runner import load_trained
from torchzoo.train.spec import ModelSpec

Batch = tuple[np.ndarray, ...]
#: the size of a packaged model's dynamic dims (other than the batch) in its sample inputs
DYNAMIC_SIZE = 8


@dataclass(frozen=True)
class OwnModel:
    """A packaged model of one's own (its manifest's origin is not the zoo), benched by its artifact's name."""

    name: str


Benched = ModelSpec | OwnModel


def benched(root: Path, names: list[str]) -> list[Benched]:
    """The models named, exported under ``root``: the zoo's registry rows, or :class:`OwnModel`."""
    zoo = set(registry.names())
    found: list[Benched] = []
    for name in names:
        origin = artifact.read_manifest(root / name).get("origin")
        kind = origin.get("kind") if isinstance(origin, dict) else None
        found.append(registry.get(name) if name in zoo and kind in (None, "zoo") else OwnModel(name))
    return found


def eager_module(model: Benched, root: Path) -> nn.Module:
    """The model in eager PyTorch: the zoo's trained module, or a packaged model's saved ExportedProgram's module
    (its own class may not be importable here; the program's graph module runs the same ops eagerly)."""
    if isinstance(model, OwnModel):
        return torch.export.load(str(root / model.name / artifact.PT2)).module()
    return load_trained(model, root)[0]


def sample_inputs(directory: Path, batch: int) -> Batch:
    """Real held-out inputs from the saved check cases, tiled to ``batch`` samples."""
    cases = artifact.read_json(directory / artifact.EQUIVALENCE)["cases"]
    heldout = max((c for c in cases if c["kind"] == "heldout"), key=lambda c: c["input_shapes"][0][0])
    with np.load(directory / artifact.CHECK_INPUTS) as npz:
        arrays = [npz[f"{heldout['name']}/{i}"] for i in range(len(heldout["input_shapes"]))]
    reps = -(-batch // len(arrays[0]))
    return tuple(np.ascontiguousarray(np.concatenate([a] * reps)[:batch]) for a in arrays)


def bench_inputs(model: Benched, directory: Path, batch: int) -> Batch:
    """``batch`` samples to time ``model`` on: held-out inputs for a zoo model, made from the specs for one's own."""
    if isinstance(model, OwnModel):
        manifest = artifact.read_manifest(directory)
        return tuple(example_arrays(manifest, batch, DYNAMIC_SIZE, np.random.default_rng(0)))
    return sample_inputs(directory, batch)
