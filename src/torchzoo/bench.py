"""``torchzoo bench``: inference speed of every exported model in every runtime, side by side in one run.

For each model: latency at batch 1 (median, p99) and throughput at a large batch for torch eager,
TorchScript, onnxruntime CPU (and CUDA when onnxruntime has it), FLOPs per sample and achieved GFLOP/s,
artifact sizes, and the resident memory each runtime adds. Runtimes are measured in interleaved
rounds (A B C A B C ...) so that a noisy neighbour slows them all alike, and the onnxruntime-vs-eager
ratio is the median of per-round ratios. Also: onnxruntime session settings tried on a few models,
the cold start of ``torchzoo predict`` vs the same prediction through torch, and (``--training``) the
names model's training time against the tutorial's one-name loop measured on this machine.

Results go to ``benchmarks/results.json`` and ``benchmarks/results.md``. Benchmarks are never tests.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from torchzoo.core import artifact
from torchzoo.core.errors import UserInputError
from torchzoo.export.formats import quiet
from torchzoo.serve_cli.session import import_onnxruntime
from torchzoo.train import registry
from torchzoo.train.registry import ModelSpec
from torchzoo.train.runner import load_trained

Run = Callable[[], Any]


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


ROUND_SECONDS = 0.05  # what one runtime's round of batch-1 calls aims at, at least


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


def _utc_now() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


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
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    options.graph_optimization_level = {
        "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[level]
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if provider == "cuda" else ["CPUExecutionProvider"]
    return ort.InferenceSession(str(path), options, providers=providers)


def _inputs(directory: Path, batch: int) -> tuple[np.ndarray, ...]:
    """Real held-out inputs from the saved check cases, tiled to ``batch`` samples."""
    cases = artifact.read_json(directory / artifact.EQUIVALENCE)["cases"]
    heldout = max((c for c in cases if c["kind"] == "heldout"), key=lambda c: c["input_shapes"][0][0])
    with np.load(directory / artifact.CHECK_INPUTS) as npz:
        arrays = [npz[f"{heldout['name']}/{i}"] for i in range(len(heldout["input_shapes"]))]
    reps = -(-batch // len(arrays[0]))
    return tuple(np.ascontiguousarray(np.concatenate([a] * reps)[:batch]) for a in arrays)


def bench_model(spec: ModelSpec, root: Path, config: BenchConfig) -> dict[str, Any]:
    directory = root / spec.name
    manifest = artifact.read_manifest(directory)
    artifact.verify_files(directory, manifest)
    input_names = [i["name"] for i in manifest["inputs"]]
    large = max(2, min(config.large_batch, 16 if manifest["parameters"] > 10_000_000 else config.large_batch))
    memory: dict[str, float] = {}

    def loaders() -> dict[str, Callable[[], Callable[[tuple[np.ndarray, ...]], Any]]]:
        def eager() -> Callable:
            model, _ = load_trained(spec, root)
            return lambda xs: model(*(torch.from_numpy(x) for x in xs))

        def torchscript() -> Callable:
            with quiet():
                scripted = torch.jit.load(str(directory / artifact.TORCHSCRIPT), map_location="cpu").eval()
            return lambda xs: scripted(*(torch.from_numpy(x) for x in xs))

        def onnx(provider: str) -> Callable[[], Callable]:
            def load() -> Callable:
                session = ort_session(directory / artifact.ONNX, provider)
                return lambda xs: session.run(None, dict(zip(input_names, xs, strict=True)))

            return load

        found = {"torch_eager": eager, "torchscript": torchscript, "onnxruntime_cpu": onnx("cpu")}
        if "CUDAExecutionProvider" in import_onnxruntime().get_available_providers():
            found["onnxruntime_cuda"] = onnx("cuda")
        return found

    one, many = _inputs(directory, 1), _inputs(directory, large)
    runners: dict[str, Callable] = {}
    slowest = 0.0
    for name, load in loaders().items():
        before = rss_mb()
        runners[name] = load()
        with torch.no_grad():
            runners[name](one)  # lazy initialisation
            start = time.perf_counter()
            runners[name](one)
            slowest = max(slowest, time.perf_counter() - start)
        memory[name] = round(rss_mb() - before, 1)

    rounds = 3 if config.quick else config.rounds
    calls = 3 if config.quick else calls_per_round(slowest, config)
    with torch.no_grad():
        latency = interleaved({n: (lambda r=r: r(one)) for n, r in runners.items()}, rounds, calls)
        big_calls = 1 if config.quick or large < 64 else 3
        throughput = interleaved({n: (lambda r=r: r(many)) for n, r in runners.items()}, rounds, big_calls)
    model, _ = load_trained(spec, root)
    flops = count_flops(model, tuple(torch.from_numpy(x) for x in one))
    result: dict[str, Any] = {
        "model": spec.name,
        "parameters": manifest["parameters"],
        "flops_per_sample": flops,
        "large_batch": large,
        "rounds": rounds,
        "calls_per_round": calls,
        "measured_at": _utc_now(),
        "sizes_bytes": {fmt: manifest["files"][info["file"]]["bytes"] for fmt, info in manifest["formats"].items()},
        "rss_added_mb": memory,
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
    result["onnxruntime_vs_torchscript_b1"] = round_ratios(latency, "torchscript", "onnxruntime_cpu", calls)
    result["onnxruntime_vs_eager_large"] = round_ratios(throughput, "torch_eager", "onnxruntime_cpu", big_calls)
    return result


SESSION_VARIANTS = {
    "default (all optimizations, threads=auto)": {},
    "intra_op_num_threads=1": {"threads": 1},
    "intra_op_num_threads=2": {"threads": 2},
    "graph optimizations disabled": {"level": "disabled"},
    "basic optimizations only": {"level": "basic"},
}


def session_tuning(spec: ModelSpec, root: Path, config: BenchConfig) -> dict[str, Any]:
    """Batch-1 latency of one model's graph under each onnxruntime session setting (interleaved)."""
    directory = root / spec.name
    names = [i["name"] for i in artifact.read_manifest(directory)["inputs"]]
    one = _inputs(directory, 1)
    runs = {}
    for label, kwargs in SESSION_VARIANTS.items():
        session = ort_session(directory / artifact.ONNX, **kwargs)
        feeds = dict(zip(names, one, strict=True))
        runs[label] = lambda s=session, f=feeds: s.run(None, f)
        # IO binding: inputs bound once, outputs pre-allocated by ORT on CPU
    session = ort_session(directory / artifact.ONNX)
    binding = session.io_binding()
    for name, array in zip(names, one, strict=True):
        binding.bind_cpu_input(name, array)
    for output in session.get_outputs():
        binding.bind_output(output.name)
    runs["default + IO binding"] = lambda: session.run_with_iobinding(binding)
    rounds = 3 if config.quick else config.rounds
    calls = 3 if config.quick else config.calls_per_round
    times = interleaved(runs, rounds, calls)
    return {label: summary(t) for label, t in times.items()}


COLD_TORCH = """
import sys, torch
from torchzoo.core.text_codec import encode_names
from torchzoo.train.names import CharRNN
model = CharRNN(57, 128, 18)
model.load_state_dict(torch.load(sys.argv[1], weights_only=True))
model.eval()
with torch.no_grad():
    scores = model(torch.from_numpy(encode_names(["Rossi"]))).exp()[0]
labels = {labels!r}
print(labels[int(scores.argmax())], float(scores.max()))
"""


def cold_start(root: Path, repeats: int) -> dict[str, Any]:
    """New process to printed answer: ``torchzoo predict names Rossi`` vs a torch script doing the same."""
    directory = root / "names"
    labels = artifact.read_json(directory / artifact.MANIFEST)["labels"]
    commands = {
        "torchzoo predict (onnxruntime)": [
            sys.executable,
            "-c",
            "from torchzoo.cli import main; main()",
            "predict",
            "names",
            "Rossi",
            "--artifacts-dir",
            str(root),
        ],
        "torch script (import torch, load state_dict)": [
            sys.executable,
            "-c",
            COLD_TORCH.format(labels=labels),
            str(directory / artifact.STATE_DICT),
        ],
    }
    times: dict[str, list[float]] = {k: [] for k in commands}
    for _ in range(repeats + 1):
        for label, command in commands.items():
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            times[label].append(time.perf_counter() - start)
    result = {label: {"median_s": statistics.median(t[1:]), "runs": t[1:]} for label, t in times.items()}
    onnx, torch_ = (result[k]["median_s"] for k in commands)
    result["ratio_predict_over_torch"] = onnx / torch_
    return result


def names_training(data_dir: Path | None, tutorial_steps: int, seed: int = 0) -> dict[str, Any]:
    """Our batched names recipe (full profile, timed end to end) vs the tutorial's loop on this machine:
    100,000 one-name SGD steps (lr 0.005), timed over ``tutorial_steps`` steps and scaled to 100,000."""
    import random

    from torchzoo.core.paths import find_dataset
    from torchzoo.core.text_codec import encode_names
    from torchzoo.train.datasets import read_names
    from torchzoo.train.family import TrainContext
    from torchzoo.train.names import FAMILY, CharRNN, NamesSplits
    from torchzoo.train.registry import get
    from torchzoo.train.runner import training_threads

    splits = NamesSplits(read_names(find_dataset("names", "names/*.txt", data_dir)), seed)
    torch.manual_seed(seed)
    model = CharRNN(57, 128, 18)
    rng = random.Random(seed)
    train = list(zip(splits.train_names, splits.train[2].tolist(), strict=True))
    start = time.perf_counter()
    for _ in range(tutorial_steps):  # the tutorial's train(): one name, letter by letter, manual SGD
        name, target = rng.choice(train)
        line = torch.from_numpy(encode_names([name], strict=False))[0]
        hidden = torch.zeros(1, 128)
        model.zero_grad()
        for letter in line:
            combined = torch.cat([letter[None], hidden], 1)
            hidden, output = model.i2h(combined), model.softmax(model.i2o(combined))
        loss = nn.functional.nll_loss(output, torch.tensor([target]))
        loss.backward()
        for p in model.parameters():
            p.data.add_(p.grad.data, alpha=-0.005)
    per_step = (time.perf_counter() - start) / tutorial_steps

    spec = get("names")
    torch.manual_seed(seed)
    ours = CharRNN(57, 128, 18)
    start = time.perf_counter()
    with training_threads(ours):  # as `torchzoo train` runs it
        result = FAMILY.fit(spec, ours, splits, TrainContext(profile="full", seed=seed))
    seconds = time.perf_counter() - start
    reached = next(
        (
            sum(r["seconds"] for r in result.history[:i])
            for i, r in enumerate(result.history, 1)
            if r["val_acc"] >= 0.75
        ),
        None,
    )
    return {
        "tutorial_seconds_per_step": per_step,
        "tutorial_steps_timed": tutorial_steps,
        "tutorial_seconds_100k_steps": per_step * 100_000,
        "ours_full_recipe_seconds": seconds,
        "ours_test_accuracy": result.metrics["test_accuracy"],
        "ours_seconds_to_val_acc_0.75": reached,
        "ratio_ours_over_tutorial": seconds / (per_step * 100_000),
    }


def environment() -> dict[str, Any]:
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
        "date": _utc_now(),
        "matmul_peak_gflops": matmul_peak_gflops(),
    }


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


def read_results(out_dir: Path) -> dict[str, Any]:
    """The results.json of an earlier run (for ``--update``); a clear error when there is none."""
    path = out_dir / "results.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserInputError(f"--update: no earlier results at {path}; run 'torchzoo bench' without --update") from None
    except (OSError, ValueError) as exc:
        raise UserInputError(f"--update: cannot read {path}: {exc}") from None


def merge_results(earlier: dict[str, Any], now: dict[str, Any]) -> dict[str, Any]:
    """``earlier`` with the model rows and sections measured ``now`` put in (registry order kept by name).

    Each model row carries its own ``measured_at``; the environment of the latest run is kept, plus the
    list of runs merged, so a partial update is never mistaken for one run.
    """
    if earlier.get("quick") != now.get("quick"):
        raise UserInputError("--update: cannot merge a --quick run with a full run (or the other way round)")
    rows = {r["model"]: r for r in earlier.get("models", [])}
    rows.update({r["model"]: r for r in now["models"]})
    order = {spec.name: i for i, spec in enumerate(registry.MODELS)}
    merged = {**earlier, **{k: v for k, v in now.items() if v and k != "models"}}
    merged["models"] = sorted(rows.values(), key=lambda r: order.get(r["model"], len(order)))
    merged["session_tuning"] = {**earlier.get("session_tuning", {}), **now.get("session_tuning", {})}
    merged["runs_merged"] = [
        *earlier.get("runs_merged", [f"{earlier['environment']['date']}: {len(earlier.get('models', []))} model rows"]),
        f"{now['environment']['date']}: {', '.join(r['model'] for r in now['models']) or 'no model rows'}",
    ]
    return merged


def write_results(results: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "results.json", out_dir / "results.md"
    artifact.write_json_atomic(json_path, results)
    artifact.write_bytes_atomic(md_path, render_markdown(results).encode())
    return json_path, md_path


def _share(gflops: float, peak: float | None) -> str:
    return f" ({100 * gflops / peak:.0f}%)" if peak else ""


def render_markdown(results: dict[str, Any]) -> str:
    env = results["environment"]
    lines = [
        "# torchzoo benchmarks",
        "",
        f"{env['cpu']}, {env['cores']} cores; torch {env['torch']} ({env['torch_threads']} threads), "
        f"onnxruntime {env['onnxruntime']} ({', '.join(env['providers'])}); {env['date']}.",
        "Latency: batch 1, median and p99 over interleaved rounds. Ratios: median of per-round ratios "
        "(eager time / onnxruntime time; > 1 means onnxruntime is faster).",
        *(
            [f"Rows from more than one run (`bench --update`): {'; '.join(results['runs_merged'])}."]
            if results.get("runs_merged")
            else []
        ),
        "",
        "| model | params | MFLOP/sample | eager b1 ms (p99) | TorchScript b1 ms (p99) | ORT CPU b1 ms (p99) "
        "| ORT vs eager b1 | ORT vs TS b1 | batch | eager /s | ORT /s | ORT GFLOP/s (% of peak) | ONNX MB "
        "| RSS +MB eager/TS/ORT |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    peak = env.get("matmul_peak_gflops")
    if peak:
        lines.insert(
            -3,
            f"Peak reference: a 1024x1024 float32 matmul (torch/MKL, {env['torch_threads']} threads) runs at "
            f"{peak:.0f} GFLOP/s here; '% of peak' compares each model's batch throughput with it.",
        )
    for r in results["models"]:
        rt = r["runtimes"]

        def lat(name: str, rt: dict = rt) -> str:
            return f"{rt[name]['batch1']['median_ms']:.3f} ({rt[name]['batch1']['p99_ms']:.3f})"

        mem = r["rss_added_mb"]
        lines.append(
            f"| {r['model']} | {r['parameters']:,} | {r['flops_per_sample'] / 1e6:.3f} | {lat('torch_eager')} "
            f"| {lat('torchscript')} | {lat('onnxruntime_cpu')} | {r['onnxruntime_vs_eager_b1']:.2f}x "
            f"| {r['onnxruntime_vs_torchscript_b1']:.2f}x | {r['large_batch']} "
            f"| {rt['torch_eager']['throughput_per_s']:,.0f} | {rt['onnxruntime_cpu']['throughput_per_s']:,.0f} "
            f"| {rt['onnxruntime_cpu']['gflops_per_s']:.2f}{_share(rt['onnxruntime_cpu']['gflops_per_s'], peak)} "
            f"| {r['sizes_bytes'].get('onnx', 0) / 2**20:.2f} "
            f"| {mem.get('torch_eager', 0):.0f}/{mem.get('torchscript', 0):.0f}/{mem.get('onnxruntime_cpu', 0):.0f} |"
        )
    if results.get("session_tuning"):
        lines += ["", "## onnxruntime session settings (batch-1 median ms)", ""]
        models = list(results["session_tuning"])
        lines += ["| setting | " + " | ".join(models) + " |", "|---|" + "---:|" * len(models)]
        for setting in next(iter(results["session_tuning"].values())):
            row = [f"{results['session_tuning'][m][setting]['median_ms']:.4f}" for m in models]
            lines.append(f"| {setting} | " + " | ".join(row) + " |")
    if results.get("cold_start"):
        cold = results["cold_start"]
        lines += ["", "## Cold start: new process to printed answer (names, 'Rossi')", ""]
        for label, value in cold.items():
            if isinstance(value, dict):
                lines.append(f"- {label}: {value['median_s']:.2f} s (median)")
        lines.append(f"- ratio: {cold['ratio_predict_over_torch']:.2f} (target <= 0.33)")
    if results.get("training"):
        t = results["training"]
        lines += [
            "",
            "## Training: names model",
            "",
            f"- tutorial loop on this machine: {t['tutorial_seconds_per_step'] * 1e3:.2f} ms/step "
            f"(timed over {t['tutorial_steps_timed']:,} steps) -> {t['tutorial_seconds_100k_steps']:.0f} s "
            "for its 100,000 steps",
            f"- ours (full recipe, batched): {t['ours_full_recipe_seconds']:.0f} s, test accuracy "
            f"{t['ours_test_accuracy']:.4f}; validation accuracy first >= 0.75 after "
            f"{t['ours_seconds_to_val_acc_0.75'] or float('nan'):.0f} s",
            f"- ratio ours / tutorial: {t['ratio_ours_over_tutorial']:.2f} (target <= 0.20)",
        ]
    return "\n".join(lines) + "\n"
