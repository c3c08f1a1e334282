"""The embeddable predictor: one validated onnxruntime session per artifact directory, thread-safe."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from torchzoo.core import artifact
from torchzoo.core.artifact import read_manifest
from torchzoo.core.errors import ArtifactError
from torchzoo.core.session import create_session
from torchzoo.serve_cli.postprocess import results
from torchzoo.serve_cli.preprocess import preprocess


class Predictor:
    """A loaded artifact. ``predict`` is safe to call from several threads (onnxruntime's ``run`` is)."""

    def __init__(self, directory: str | Path, provider: str = "auto") -> None:
        self.directory = Path(directory)
        self.manifest, graph = _read_graph(self.directory)
        created = create_session(graph, provider)
        self.session, self.provider, self.notice = created.session, created.provider, created.notice
        self.input_names = [i["name"] for i in self.manifest["inputs"]]
        self.labels: list[str] = self.manifest["labels"]
        self.task: str = self.manifest["task"]
        self.postprocessing: dict[str, Any] = self.manifest.get("postprocessing", {})

    @property
    def name(self) -> str:
        return self.manifest["model"]

    def run(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Run the graph on already-preprocessed arrays; returns the raw outputs."""
        return self.session.run(None, dict(zip(self.input_names, arrays, strict=True)))

    def predict(self, inputs: Sequence[Any], top_k: int = 3, threshold: float = 0.5) -> list[dict[str, Any]]:
        """Preprocess ``inputs`` as the manifest says, run, and return one plain dict per sample
        (``"input"`` names the sample: the name, the file, or ``file[i]`` for a row of a CSV/.npy batch)."""
        if isinstance(inputs, str | np.ndarray):
            inputs = [inputs]
        arrays, sources = preprocess(inputs, self.manifest["preprocessing"], self.manifest["inputs"])
        raw = self.run(arrays)[0]
        scored = results(raw, self.task, self.labels, self.postprocessing, top_k=top_k, threshold=threshold)
        return [{"input": source, **r} for source, r in zip(sources, scored, strict=True)]


def _read_graph(directory: Path) -> tuple[dict[str, Any], bytes]:
    """The manifest and the graph's verified bytes. A writer publishes a new version by an atomic
    directory exchange, so a reader that raced it (old manifest, new graph) simply reads again once."""
    for attempt in range(2):
        manifest = read_manifest(directory)
        try:
            return manifest, artifact.read_verified(directory, manifest, artifact.ONNX)
        except ArtifactError:
            if attempt == 1 or read_manifest(directory) == manifest:
                raise
    raise AssertionError("unreachable")


_CACHE: dict[tuple[str, str], Predictor] = {}
_LOCK = threading.Lock()


def load(directory: str | Path, provider: str = "auto") -> Predictor:
    """The predictor for an artifact directory; one per (directory, provider) per process."""
    key = (str(Path(directory).resolve()), provider)
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = Predictor(directory, provider)
        return _CACHE[key]
