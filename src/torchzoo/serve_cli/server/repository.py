"""The models a server holds, by name and version, and the model repository extension that changes them at run
time (``POST /v2/repository/index``, ``.../models/{m}/load``, ``.../unload``; gRPC's RepositoryIndex,
RepositoryModelLoad, RepositoryModelUnload).

A model directory under the artifact root is either one artifact (``<m>/manifest.json``: version 1), or Triton's
repository layout as ``torchzoo export --format triton`` writes it: integer version directories, each an
artifact (``<m>/<n>/manifest.json`` and its graph). Every version present is served; the unversioned routes
serve the highest.

Loading is all or nothing: every version of the model is read, verified and warmed up in a worker thread
first, then the new versions replace the old in one step, so requests already holding the old versions finish
on their sessions and the next ones get the new. A model that fails verification is refused with the reason
and whatever was served before keeps serving. ``--model-control none`` (the default) serves what was named at
start and refuses load/unload; ``explicit`` allows them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from torchzoo.core.artifact import MANIFEST
from torchzoo.core.errors import TorchzooError, first_line
from torchzoo.core.tensor_spec import TensorSpec, example_arrays
from torchzoo.serve_cli.output_check import check_outputs
from torchzoo.serve_cli.predictor import Predictor
from torchzoo.serve_cli.server.batching import Batcher
from torchzoo.serve_cli.server.metrics import Metrics
from torchzoo.serve_cli.server.protocol import ProtocolError
from torchzoo.serve_cli.server.stats import ModelStats


@dataclass
class ServedModel:
    """One version of a model as the server runs it: its predictor, batcher, tensors and statistics."""

    predictor: Predictor
    batcher: Batcher
    inputs: list[TensorSpec] = field(default_factory=list)
    outputs: list[TensorSpec] = field(default_factory=list)
    stats: ModelStats = field(default_factory=ModelStats)

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.outputs]


@dataclass
class BatchSettings:
    max_batch: int = 64
    max_delay_ms: float = 2.0


def version_directories(directory: Path) -> dict[str, Path]:
    """The versions of a model directory: its integer subdirectories that hold an artifact (Triton's layout),
    else the directory itself as version 1 when it is an artifact; ``{}`` when it is neither."""
    if not directory.is_dir():
        return {}
    versions = {p.name: p for p in directory.iterdir() if p.name.isdigit() and p.is_dir() and (p / MANIFEST).is_file()}
    if versions:
        return dict(sorted(versions.items(), key=lambda item: int(item[0])))
    return {"1": directory} if (directory / MANIFEST).is_file() else {}


def warm_up(predictor: Predictor) -> None:
    """One run on zeros of a valid shape (batch 1, other dynamic axes at their smallest size: the export's lower
    bound, else 1; every input of its own dtype), so the first request pays no set-up cost."""
    predictor.run(example_arrays(predictor.manifest, batch=1))


def load_versions(directory: Path, provider: str) -> dict[str, Predictor]:
    """Every version of a model, each verified and warmed up, in a fresh predictor (never a cached one: the files
    may have changed since); the first failure is raised as a one-line TorchzooError naming the version."""
    versions = version_directories(directory)
    if not versions:
        raise ProtocolError(f"{directory.name}: no artifact in the model directory (no {MANIFEST})", 404)
    loaded = {}
    for version, path in versions.items():
        try:
            predictor = Predictor(path, provider)
            warm_up(predictor)
        except Exception as exc:  # a graph that cannot even be warmed up is not served either
            reason = str(exc) if isinstance(exc, TorchzooError) else first_line(exc)
            raise TorchzooError(reason if path == directory else f"version {version}: {reason}") from None
        loaded[version] = predictor
    return loaded


@dataclass
class ModelEntry:
    versions: dict[str, ServedModel]

    @property
    def latest(self) -> str:
        return max(self.versions, key=int)


class ModelRepository:
    """The served models by name, each with its versions; lookups for the endpoints, load and unload."""

    def __init__(
        self,
        models: dict[str, dict[str, Predictor]],
        batching: BatchSettings,
        metrics: Metrics,
        root: Path | None = None,
        provider: str = "auto",
        control: str = "none",
    ) -> None:
        self.batching, self.metrics, self.root, self.provider, self.control = batching, metrics, root, provider, control
        self.models = {name: self._entry(name, versions) for name, versions in models.items()}
        self.loading: dict[str, asyncio.Lock] = {}
        self.started = False
        self.retiring: set[asyncio.Task] = set()

    def __contains__(self, name: object) -> bool:
        return name in self.models

    def find(self, name: str, version: str | None = None) -> ServedModel:
        """The version asked for (the latest when none or ""), or a 404 naming what is served."""
        entry = self.models.get(name)
        if entry is None:
            raise ProtocolError(f"unknown model '{name}'; served: {', '.join(self.models) or 'none'}", 404)
        version = version or entry.latest
        if version not in entry.versions:
            raise ProtocolError(f"model '{name}' has no version {version}; it has {', '.join(entry.versions)}", 404)
        return entry.versions[version]

    def versions(self, name: str) -> list[str]:
        self.find(name)
        return list(self.models[name].versions)

    def served_versions(self) -> list[tuple[str, str, ServedModel]]:
        return [(name, v, m) for name, entry in self.models.items() for v, m in entry.versions.items()]

    def start(self) -> None:
        self.started = True
        for _, _, model in self.served_versions():
            model.batcher.start()

    async def stop(self) -> None:
        for _, _, model in self.served_versions():
            await model.batcher.stop()
        await asyncio.gather(*self.retiring, return_exceptions=True)

    # --- the repository extension ------------------------------------------------------------------------

    def index(self) -> list[dict[str, Any]]:
        """Every model directory under the root (and every served model), with its versions' states."""
        rows = []
        on_disk = {} if self.root is None else {p.name: p for p in sorted(self.root.glob("*"))}
        for name in sorted(set(on_disk) | set(self.models)):
            served = self.models.get(name)
            versions = version_directories(on_disk[name]) if name in on_disk else {}
            for version in sorted(set(versions) | set(served.versions if served else ()), key=int):
                ready = served is not None and version in served.versions
                rows.append({"name": name, "version": version, "state": "READY" if ready else "UNAVAILABLE"})
        return rows

    async def load(self, name: str) -> None:
        """Load (or reload) every version of ``name`` from the root, then serve them in place of the old."""
        directory = self._directory(name)
        async with self.loading.setdefault(name, asyncio.Lock()):
            try:
                predictors = await asyncio.to_thread(load_versions, directory, self.provider)
            except TorchzooError as exc:
                raise ProtocolError(f"model '{name}' was not loaded: {exc}") from None
            entry = self._entry(name, predictors)
            if self.started:
                for model in entry.versions.values():
                    model.batcher.start()
            old, self.models[name] = self.models.get(name), entry
            self._retire(old)

    async def unload(self, name: str) -> None:
        self._controlled()
        if name not in self.models:
            raise ProtocolError(f"model '{name}' is not loaded", 404)
        self._retire(self.models.pop(name))

    def _directory(self, name: str) -> Path:
        """The model directory ``name`` names under the root: a plain name of a directory found there."""
        self._controlled()
        found = {} if self.root is None else {p.name: p for p in self.root.glob("*") if p.is_dir()}
        if name not in found:
            raise ProtocolError(f"no model directory '{name}' under the artifact root", 404)
        return found[name]

    def _controlled(self) -> None:
        if self.control != "explicit":
            raise ProtocolError("model control is 'none': start the server with --model-control explicit")

    def _retire(self, entry: ModelEntry | None) -> None:
        """Stop an entry's batchers once what they hold has run; a request that still reaches one runs alone."""
        if entry is None:
            return
        for model in entry.versions.values():
            task = asyncio.get_running_loop().create_task(model.batcher.stop())
            self.retiring.add(task)
            task.add_done_callback(self.retiring.discard)

    def _entry(self, name: str, predictors: dict[str, Predictor]) -> ModelEntry:
        return ModelEntry({version: self._served(name, p) for version, p in predictors.items()})

    def _served(self, name: str, predictor: Predictor) -> ServedModel:
        stats = ModelStats()
        batcher = Batcher(
            _checked_run(predictor, name),
            self.batching.max_batch,
            self.batching.max_delay_ms / 1000,
            on_batch=self.metrics.batch.labels(name).observe,
            on_queue=self.metrics.queue.labels(name).set,
            on_run=stats.ran,
            on_wait=stats.queue.add,
        )
        inputs = [TensorSpec.from_json(s) for s in predictor.manifest["inputs"]]
        outputs = [TensorSpec.from_json(s) for s in predictor.manifest["outputs"]]
        return ServedModel(predictor, batcher, inputs, outputs, stats)


def _checked_run(predictor: Predictor, name: str) -> Callable[[Sequence[np.ndarray]], list[np.ndarray]]:
    """``predictor.run`` whose outputs are checked to be an answer (shapes, finite, probabilities in [0, 1]),
    in the batch's worker thread; the batcher keeps one request's failure from failing the others."""

    def run(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        return check_outputs(predictor.run(arrays), arrays, predictor.manifest, name)

    return run
