"""onnxruntime session settings compared on one model's graph: threads, optimization level, IO binding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torchzoo.bench.measure import QUICK_ROUNDS, BenchConfig, interleaved, ort_session, summary
from torchzoo.bench.models import sample_inputs
from torchzoo.core import artifact
from torchzoo.train.spec import ModelSpec

#: models whose onnxruntime session settings are compared: the smallest miss, an MLP, a recurrent net, the CNN
SESSION_TUNED = ("linreg", "wine", "mnist-mlp", "mnist-lstm", "cifar10-cnn", "names")

#: label -> keyword arguments of :func:`~torchzoo.bench.measure.ort_session`
SESSION_VARIANTS: dict[str, dict[str, Any]] = {
    "default (all optimizations, threads=auto)": {},
    "intra_op_num_threads=1": {"threads": 1},
    "intra_op_num_threads=2": {"threads": 2},
    "graph optimizations disabled": {"level": "disabled"},
    "basic optimizations only": {"level": "basic"},
}
IO_BINDING = "default + IO binding"


def session_tuning(spec: ModelSpec, root: Path, config: BenchConfig) -> dict[str, Any]:
    """Batch-1 latency of one model's graph under each onnxruntime session setting (interleaved)."""
    directory = root / spec.name
    names = [i["name"] for i in artifact.read_manifest(directory)["inputs"]]
    one = sample_inputs(directory, 1)
    feeds = dict(zip(names, one, strict=True))
    runs = {}
    for label, kwargs in SESSION_VARIANTS.items():
        session = ort_session(directory / artifact.ONNX, **kwargs)
        runs[label] = lambda s=session: s.run(None, feeds)
    # IO binding: inputs bound once, outputs pre-allocated by onnxruntime on CPU
    session = ort_session(directory / artifact.ONNX)
    binding = session.io_binding()
    for name, array in feeds.items():
        binding.bind_cpu_input(name, array)
    for output in session.get_outputs():
        binding.bind_output(output.name)
    runs[IO_BINDING] = lambda: session.run_with_iobinding(binding)
    rounds = QUICK_ROUNDS if config.quick else config.rounds
    calls = QUICK_ROUNDS if config.quick else config.calls_per_round
    times = interleaved(runs, rounds, calls)
    return {label: summary(t) for label, t in times.items()}
