"""Per-model latency and throughput across runtimes, measured in interleaved rounds.

Runtimes are measured in rounds (A B C A B C ...) so that a noisy neighbour slows them all alike, and a
ratio between two runtimes is the median of per-round ratios. Also here: FLOP counting, resident memory,
the matmul peak reference and the record of the machine the numbers were measured on.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from torchzoo.bench.models import Benched, OwnModel, bench_inputs, eager_module
from torchzoo.bench.peers import best_peer, peer_loaders
from torchzoo.core import artifact
from torchzoo.core.clock import utc_minute
from torchzoo.core.errors import first_line
from torchzoo.core.session import PROVIDERS, create_session, import_onnxruntime
from torchzoo.export.context import quiet

Run = Callable[[], Any]
Batch = tuple[np.ndarray, ...]

ROUND_SECONDS = 0.05  # what one runtime's round of batch-1 calls aims at, at least
QUICK_ROUNDS = 3  # rounds (and calls per round) of a --quick run


@dataclass
class BenchConfig:
    rounds: int = 15  # interleaved rounds per measurement
    calls_per_round: int = 20  # batch-1 calls per runtime per round
    large_batch: int = 256
    quick: bool = False  # a few rounds only: for tests


def rss_mb() -> float:
    """Resident memory of this process (MiB), from /proc (Linux)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def interleaved(runs: dict[str, Run], rounds: int, calls: int) -> dict[str, list[float]]:
    """Per-call seconds of each runtime, measured in alternating rounds after one warm-up round."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for round_index in range(rounds + 1):
        for name, run in runs.items():
            for _ in range(calls):
                start = time.perf_counter()
                run()
                elapsed = time.perf_counter() - start
                if round_index:  # round 0 warms caches and lazy initialisation
                    times[name].append(elapsed)
    return times


def calls_per_round(seconds_per_call: float, config: BenchConfig) -> int:
    """Batch-1 calls per round: ``config.calls_per_round`` for fast models, fewer (>= 3) for slow ones.

    A round of one runtime aims at ~50 ms or more, so microsecond models get many calls per round and a
    100M-parameter model (~0.1 s a call) gets 3: every model is measured over the same number of rounds.
    """
    return max(3, min(config.calls_per_round, int(ROUND_SECONDS / max(seconds_per_call, 1e-9))))


def round_ratios(times: dict[str, list[float]], numerator: str, denominator: str, calls: int) -> float:
    """Median over rounds of median(numerator) / median(denominator): robust to slow rounds."""
    a, b = times[numerator], times[denominator]
    ratios = [
        statistics.median(a[i : i + calls]) / statistics.median(b[i : i + calls]) for i in range(0, len(a), calls)
    ]
    return statistics.median(ratios)


def summary(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {"median_ms": float(np.median(ms)), "p99_ms": float(np.percentile(ms, 99)), "calls": len(ms)}


def count_flops(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> int:
    """FLOPs of one forward (multiply and add count as two). torch's FlopCounterMode counts matmuls and
    convolutions; the fused recurrent kernels (nn.RNN/GRU/LSTM) it does not see are counted here."""
    from torch.utils.flop_counter import FlopCounterMode

    recurrent = 0

    def hook(module: nn.RNNBase, args: tuple[torch.Tensor, ...], _: Any) -> None:
        nonlocal recurrent
        x = args[0]
        batch, steps = (x.shape[0], x.shape[1]) if module.batch_first else (x.shape[1], x.shape[0])
        gates = {"LSTM": 4, "GRU": 3}.get(module.mode, 1)
        for layer in range(module.num_layers):
            fan_in = module.input_size if layer == 0 else module.hidden_size
            recurrent += 2 * gates * (fan_in + module.hidden_size) * module.hidden_size * steps * batch

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.RNNBase)]
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    return int(counter.get_total_flops()) + recurrent


def ort_session(path: Path, provider: str = "cpu", threads: int = 0, level: str = "all") -> Any:
    """The raw onnxruntime session over a graph file, built by the project's one session factory."""
    return create_session(path, provider, level, threads).session


def _runtime_loaders(
    spec: Benched, root: Path, input_names: list[str]
) -> dict[str, Callable[[], Callable[[Batch], Any]]]:
    """Per runtime, a loader that returns a function running one batch: loaded one at a time for RSS. A runtime
    whose file the artifact lacks (a packaged model exported without TorchScript) is not listed."""
    directory = root / spec.name

    def eager() -> Callable[[Batch], Any]:
        model = eager_module(spec, root)
        return lambda xs: model(*(torch.from_numpy(x) for x in xs))

    def torchscript() -> Callable[[Batch], Any]:
        with quiet():
            scripted = torch.jit.load(str(directory / artifact.TORCHSCRIPT), map_location="cpu").eval()
        return lambda xs: scripted(*(torch.from_numpy(x) for x in xs))

    def onnx(provider: str) -> Callable[[], Callable[[Batch], Any]]:
        def load() -> Callable[[Batch], Any]:
            session = ort_session(directory / artifact.ONNX, provider)
            return lambda xs: session.run(None, dict(zip(input_names, xs, strict=True)))

        return load

    found = {"torch_eager": eager, "torchscript": torchscript, "onnxruntime_cpu": onnx("cpu")}
    if not (directory / artifact.TORCHSCRIPT).is_file():
        del found["torchscript"]
    if PROVIDERS["cuda"] in import_onnxruntime().get_available_providers():
        found["onnxruntime_cuda"] = onnx("cuda")
    return {**found, **peer_loaders(spec, root, input_names, artifact.read_manifest(directory))}


#: the batch the int8/fp16 variants are also compared with fp32 at (the issue's int8 target is stated at 64)
VARIANT_BATCH = 64


def bench_model(spec: Benched, root: Path, config: BenchConfig) -> dict[str, Any]:
    """One model's row: batch-1 latency and large-batch throughput per runtime, FLOPs, sizes, memory. A packaged
    model of one's own (:class:`~torchzoo.bench.models.OwnModel`) is timed on inputs made from its specs, its
    eager runtime being its saved ExportedProgram's module (``eager_from`` says so)."""
    directory = root / spec.name
    manifest = artifact.read_manifest(directory)
    artifact.verify_files(directory, manifest)
    input_names = [i["name"] for i in manifest["inputs"]]
    large = max(2, min(config.large_batch, 16 if manifest["parameters"] > 10_000_000 else config.large_batch))
    memory: dict[str, float] = {}

    one, many = bench_inputs(spec, directory, 1), bench_inputs(spec, directory, large)
    runners: dict[str, Callable[[Batch], Any]] = {}
    first_call: dict[str, float] = {}  # load + first call: torch.compile's compile time, sessions' set-up
    skipped: dict[str, str] = {}
    slowest = 0.0
    for name, load in _runtime_loaders(spec, root, input_names).items():
        before = rss_mb()
        start = time.perf_counter()
        try:
            runners[name] = load()
            with quiet(), torch.no_grad():
                runners[name](one)  # lazy initialisation (torch.compile compiles here)
        except Exception as exc:  # a peer that cannot run this model (OpenVINO without an op) is listed
            runners.pop(name, None)
            skipped[name] = first_line(exc)
            continue
        first_call[name] = time.perf_counter() - start
        with torch.no_grad():
            start = time.perf_counter()
            runners[name](one)
            slowest = max(slowest, time.perf_counter() - start)
        memory[name] = round(rss_mb() - before, 1)

    rounds = QUICK_ROUNDS if config.quick else config.rounds
    calls = QUICK_ROUNDS if config.quick else calls_per_round(slowest, config)
    with torch.no_grad():
        latency = interleaved({n: (lambda r=r: r(one)) for n, r in runners.items()}, rounds, calls)
        big_calls = 1 if config.quick or large < 64 else 3
        throughput = interleaved({n: (lambda r=r: r(many)) for n, r in runners.items()}, rounds, big_calls)
        graphs = {n: r for n, r in runners.items() if n == "onnxruntime_cpu" or n.startswith("onnxruntime_cpu_")}
        at_variant_batch: dict[str, list[float]] = {}
        if len(graphs) > 1:  # fp32 and its variants, also at the batch the int8 target is stated at
            middle = bench_inputs(spec, directory, VARIANT_BATCH)
            at_variant_batch = interleaved({n: (lambda r=r: r(middle)) for n, r in graphs.items()}, rounds, big_calls)
    flops = count_flops(eager_module(spec, root), tuple(torch.from_numpy(x) for x in one))
    result: dict[str, Any] = {
        "model": spec.name,
        "parameters": manifest["parameters"],
        "flops_per_sample": flops,
        "large_batch": large,
        "rounds": rounds,
        "calls_per_round": calls,
        "measured_at": utc_minute(),
        "eager_from": f"{artifact.PT2} (the saved ExportedProgram's module)" if isinstance(spec, OwnModel) else None,
        "sizes_bytes": {fmt: manifest["files"][info["file"]]["bytes"] for fmt, info in manifest["formats"].items()},
        "rss_added_mb": memory,
        "first_call_s": first_call,
        "skipped": skipped,
        "runtimes": {},
    }
    for name in runners:
        per_batch = statistics.median(throughput[name])
        result["runtimes"][name] = {
            "batch1": summary(latency[name]),
            "throughput_per_s": large / per_batch,
            "gflops_per_s": flops * large / per_batch / 1e9,
        }
    result["onnxruntime_vs_eager_b1"] = round_ratios(latency, "torch_eager", "onnxruntime_cpu", calls)
    if "torchscript" in latency:
        result["onnxruntime_vs_torchscript_b1"] = round_ratios(latency, "torchscript", "onnxruntime_cpu", calls)
    result["onnxruntime_vs_eager_large"] = round_ratios(throughput, "torch_eager", "onnxruntime_cpu", big_calls)
    result.update(best_peer(latency, calls, round_ratios))
    for variant in ("int8", "fp16"):
        if f"onnxruntime_cpu_{variant}" in throughput:
            result[f"{variant}_vs_fp32_large"] = round_ratios(
                throughput, "onnxruntime_cpu", f"onnxruntime_cpu_{variant}", big_calls
            )
            name = f"onnxruntime_cpu_{variant}"
            result[f"{variant}_vs_fp32_b1"] = round_ratios(latency, "onnxruntime_cpu", name, calls)
            result[f"{variant}_vs_fp32_b{VARIANT_BATCH}"] = round_ratios(
                at_variant_batch, "onnxruntime_cpu", name, big_calls
            )
    return result


def matmul_peak_gflops(size: int = 1024, repeats: int = 10) -> float:
    """What this CPU does at best here: the fastest of ``repeats`` float32 ``size``^3 matmuls (torch, MKL).

    The reference for the achieved GFLOP/s of each model (the "% of peak" column): a large dense matmul is
    the most favourable float32 workload. It is a measured reference, not a hard ceiling: onnxruntime's own
    sgemm at a large batch can beat torch's matmul here (mnist-ffnn ran at 106% of it).
    """
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def environment() -> dict[str, Any]:
    """The machine and library versions the numbers were measured with, and the matmul peak reference."""
    ort = import_onnxruntime()
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "onnxruntime": ort.__version__,
        "providers": ort.get_available_providers(),
        "python": platform.python_version(),
        "date": utc_minute(),
        "matmul_peak_gflops": matmul_peak_gflops(),
    }
