"""The embeddable predictor: one validated onnxruntime session per artifact directory, thread-safe.

An artifact is untrusted input. Loading one checks, in order: its signature when trusted keys are given
(before any file is used), the manifest (:func:`torchzoo.core.artifact.read_manifest`: a bounded regular
file, its sha256, the schema), the graph's bytes against the manifest, the graph's self-containment
(:mod:`torchzoo.core.graph_check`), then the session's own inputs and outputs against the manifest. Every
onnxruntime error is an :class:`ArtifactError` naming the artifact; outputs are checked before they are
reported (:mod:`torchzoo.serve_cli.output_check`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from torchzoo.core import artifact
from torchzoo.core.artifact import read_manifest
from torchzoo.core.errors import ArtifactError, OutputError, TorchzooError, UserInputError, first_line
from torchzoo.core.graph_check import ONNXRUNTIME_DOMAIN, check_graph
from torchzoo.core.limits import MAX_BATCH
from torchzoo.core.manifest_schema import check_against_graph
from torchzoo.core.session import create_session
from torchzoo.core.text_codec import printable
from torchzoo.serve_cli.output_check import check_outputs
from torchzoo.serve_cli.postprocess import sample_results
from torchzoo.serve_cli.preprocess import preprocess
from torchzoo.serve_cli.tensor_inputs import check_dims


class Predictor:
    """A loaded artifact. ``predict`` is safe to call from several threads (onnxruntime's ``run`` is)."""

    def __init__(
        self,
        directory: str | Path,
        provider: str = "auto",
        trusted_keys: Sequence[str | Path] | None = None,
        variant: str = "fp32",
    ) -> None:
        self.directory = Path(directory)
        self.shown = printable(str(self.directory))
        if variant not in artifact.VARIANT_FORMATS:
            raise UserInputError(
                f"unknown variant {printable(repr(variant), 40)}; choose {', '.join(artifact.VARIANT_FORMATS)}"
            )
        if trusted_keys is not None:
            from torchzoo.core.signing import verify_signature

            verify_signature(self.directory, trusted_keys)
        self.variant = variant
        self.manifest, self.graph_file, graph = _read_graph(self.directory, variant)
        # an int8 graph may use onnxruntime's built-in contrib ops (DynamicQuantizeLSTM)
        check_graph(
            graph,
            f"{self.shown}/{self.graph_file}",
            frozenset({ONNXRUNTIME_DOMAIN}) if variant != "fp32" else frozenset(),
        )
        try:
            created = create_session(graph, provider)
        except TorchzooError:
            raise
        except Exception as exc:  # onnxruntime: invalid protobuf, unknown op, type mismatch...
            raise ArtifactError(
                f"{self.shown}: onnxruntime cannot load {self.graph_file} ({first_line(exc)})"
            ) from None
        self.session, self.provider, self.notice = created.session, created.provider, created.notice
        check_against_graph(self.manifest, self.session, f"{self.shown}/{artifact.MANIFEST}")
        self.input_names = [i["name"] for i in self.manifest["inputs"]]
        self.labels: list[str] = self.manifest["labels"]
        self.task: str = self.manifest["task"]
        self.postprocessing: dict[str, Any] = self.manifest.get("postprocessing") or {}

    @property
    def name(self) -> str:
        return self.manifest["model"]

    def run(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Run the graph on already-preprocessed arrays; returns the raw outputs. Arrays that do not fit the
        manifest's inputs (count, rank, dtype, fixed sizes, a dynamic dim's size across inputs) are a
        UserInputError; then, since the manifest and
        the graph agree, a failed run is the artifact's fault (ArtifactError), and so is an output holding NaN or
        infinity (OutputError): callers of ``run`` (the server) never see one."""
        if len(arrays) != len(self.input_names):
            raise UserInputError(f"{len(arrays)} arrays given; the model takes {len(self.input_names)}")
        for array, spec in zip(arrays, self.manifest["inputs"], strict=True):
            shape = spec["shape"]
            fits = isinstance(array, np.ndarray) and array.dtype == np.dtype(spec["dtype"]) and array.ndim == len(shape)
            if not fits or any(isinstance(d, int) and d != n for d, n in zip(shape, array.shape, strict=True)):
                got = f"{array.dtype} {list(array.shape)}" if isinstance(array, np.ndarray) else type(array).__name__
                raise UserInputError(f"input {spec['name']!r}: {got}; the model takes {spec['dtype']} {shape}")
        check_dims(arrays, self.manifest["inputs"])
        feeds = dict(zip(self.input_names, arrays, strict=True))
        try:
            outputs = self.session.run(None, feeds)
        except MemoryError:
            raise UserInputError("the input is too large for this machine's memory") from None
        except Exception as exc:
            raise ArtifactError(
                f"{self.shown}: onnxruntime failed to run {self.graph_file} ({first_line(exc)})"
            ) from None
        for output, spec in zip(outputs, self.manifest["outputs"], strict=False):
            if isinstance(output, np.ndarray) and output.dtype.kind == "f" and not np.all(np.isfinite(output)):
                raise OutputError(
                    f"{self.shown}: the graph's output {spec['name']!r} holds NaN or infinity; not an answer"
                )
        return outputs

    def predict(
        self, inputs: Sequence[Any] | Mapping[str, Any] | np.ndarray | str, top_k: int = 3, threshold: float = 0.5
    ) -> list[dict[str, Any]]:
        """Preprocess ``inputs`` as the manifest says, run, and return one plain dict per sample
        (``"input"`` names the sample: the name, the file, or ``file[i]`` for a row of a CSV/.npy batch).

        A model on raw tensors (preprocessing ``tensors``) takes one array (one input), a sequence of arrays in
        input order, a dict by input name, or array files (:mod:`torchzoo.serve_cli.tensor_inputs`). Results:
        for a scored task, what a zoo model of that task gives (from output 0; every output is in :meth:`run`'s
        answer); for task ``tensor``, ``{"input": ..., "outputs": {name: values}}`` with every output."""
        if isinstance(inputs, str | np.ndarray):
            inputs = [inputs]
        try:
            arrays, sources = preprocess(inputs, self.manifest["preprocessing"], self.manifest["inputs"])
        except (MemoryError, RecursionError) as exc:
            raise UserInputError(f"the input is too large or too deeply nested ({type(exc).__name__})") from None
        if len(sources) > MAX_BATCH:
            raise UserInputError(f"{len(sources):,} samples in one call; at most {MAX_BATCH:,}")
        outputs = check_outputs(self.run(arrays), arrays, self.manifest, self.shown)
        scored = sample_results(outputs, self.manifest, top_k=top_k, threshold=threshold)
        return [{"input": source, **r} for source, r in zip(sources, scored, strict=True)]


def variant_file(manifest: dict[str, Any], variant: str, shown: str) -> str:
    """The graph file of ``variant``: ``model.onnx`` for fp32, else the variant's file when the manifest
    lists it as published (the file name comes from torchzoo's own table, never from the manifest)."""
    if variant == "fp32":
        return artifact.ONNX
    block = manifest.get("variants")
    block = block if isinstance(block, dict) else {}
    published, refused = block.get("published"), block.get("refused")
    if isinstance(published, dict) and variant in published:
        return artifact.FORMAT_FILES[artifact.VARIANT_FORMATS[variant]]
    why = refused.get(variant) if isinstance(refused, dict) else None
    if isinstance(why, str):
        raise ArtifactError(f"{shown} has no {variant} variant: it was refused at export ({printable(why, 300)})")
    name = printable(str(manifest.get("model")), 64)
    raise ArtifactError(
        f"{shown} has no {variant} variant; export it with 'torchzoo export {name} --format "
        f"{artifact.VARIANT_FORMATS[variant]}'"
    )


def _read_graph(directory: Path, variant: str = "fp32") -> tuple[dict[str, Any], str, bytes]:
    """The manifest, the variant's graph file and its verified bytes. A writer publishes a new version by an
    atomic directory exchange, so a reader that raced it (old manifest, new graph) simply reads again once."""
    for attempt in range(2):
        manifest = read_manifest(directory)
        filename = variant_file(manifest, variant, printable(str(directory)))
        try:
            return manifest, filename, artifact.read_verified(directory, manifest, filename)
        except ArtifactError:
            if attempt == 1 or read_manifest(directory) == manifest:
                raise
    raise AssertionError("unreachable")


_CACHE: dict[tuple[str, str, tuple[str, ...] | None, str], Predictor] = {}
_LOCK = threading.Lock()


def load(
    directory: str | Path,
    provider: str = "auto",
    trusted_keys: Sequence[str | Path] | None = None,
    variant: str = "fp32",
) -> Predictor:
    """The predictor for an artifact directory; one per (directory, provider, trusted keys, variant) per process.

    ``trusted_keys``: public keys (PEM files); the artifact's ``model.sig`` must verify with one of them,
    checked before any other file is read (needs ``pip install 'torchzoo[sign]'``). ``variant``: ``fp32``
    (``model.onnx``) or a published reduced-precision graph, ``int8`` / ``fp16`` (the manifest's ``variants``)."""
    keys = None if trusted_keys is None else tuple(sorted(str(Path(k).resolve()) for k in trusted_keys))
    key = (str(Path(directory).resolve()), provider, keys, variant)
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = Predictor(directory, provider, trusted_keys, variant)
        return _CACHE[key]
