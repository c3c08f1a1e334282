"""``torchzoo predict-batch`` throughput: images/s over the 10,000 MNIST test images, written once as PNG files,
for mnist-mlp and mnist-lstm, in this process's machine without Ray and as a Ray Data job on a local Ray instance
(1 and 2 actors). Each run is the real command in a fresh process; rounds alternate the modes, so a load that
other work puts on the machine falls on all of them. Recorded per run: the process's wall time (start-up and, with
Ray, starting the instance included), the job's time (reading, predicting and writing every row), with Ray the span
the actors worked (first batch begun to last batch done), the rows each actor did, the load average before and
after, whether the rows are byte for byte those of the local run, and the accuracy of the labels against MNIST's.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from torchzoo.core.errors import UserInputError

MODELS = ("mnist-mlp", "mnist-lstm")
BATCH_SIZE = 256
#: (name, extra arguments) of each mode
MODES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("local", ()),
    ("ray, 1 actor", ("--ray", "--actors", "1")),
    ("ray, 2 actors", ("--ray", "--actors", "2")),
)


def write_pngs(data_dir: Path | None, folder: Path, count: int) -> list[int]:
    """The first ``count`` MNIST test images as ``NNNNN_LABEL.png`` under ``folder``; returns their labels."""
    from PIL import Image

    from torchzoo.core.paths import find_dataset
    from torchzoo.train.datasets import read_mnist

    test = read_mnist(find_dataset("MNIST/raw", "the MNIST IDX files", data_dir)).test
    for i in range(count):
        Image.fromarray(test.images[i]).save(folder / f"{i:05d}_{int(test.targets[i])}.png")
    return [int(t) for t in test.targets[:count]]


def _one_run(root: Path, model: str, images: Path, output: Path, extra: tuple[str, ...]) -> dict[str, Any]:
    command = [sys.executable, "-c", "from torchzoo.cli import main; main()", "predict-batch", model, str(images)]
    command += ["--output", str(output), "--batch-size", str(BATCH_SIZE), "--json", "--artifacts-dir", str(root)]
    load_before = os.getloadavg()
    started = time.perf_counter()
    result = subprocess.run([*command, *extra], capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        shown = " ".join([model, *extra])
        raise UserInputError(f"predict-batch {shown} exited {result.returncode}: {result.stderr[-300:]}")
    summary = json.loads(result.stdout)
    compute = summary.get("ray_compute_seconds")
    return {
        "rows": summary["rows"],
        "failed": summary["failed"],
        "wall_s": round(wall, 3),
        "job_s": summary["seconds"],
        "ray_compute_s": compute,
        "wall_rows_per_s": round(summary["rows"] / wall, 1),
        "job_rows_per_s": round(summary["rows"] / summary["seconds"], 1),
        "ray_compute_rows_per_s": round(summary["rows"] / compute, 1) if compute else None,
        "ray_actors": summary.get("ray_actors") or {},
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }


def _accuracy(output: Path, labels: list[int]) -> float:
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    truth = {f"{i:05d}_{t}.png": t for i, t in enumerate(labels)}
    return sum(int(r["label"]) == truth[Path(r["file"]).name] for r in rows) / len(rows)


def _trained(directory: Path) -> dict[str, Any]:
    """The training profile and the test accuracy training measured (torch, the same 10,000 images)."""
    from torchzoo.core import artifact

    record = artifact.read_json(directory / artifact.TRAIN_RECORD)
    value = (record.get("metrics") or {}).get("test_accuracy")
    return {"profile": record.get("profile"), "test_accuracy": float(value) if isinstance(value, int | float) else None}


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for package in ("onnxruntime", "ray", "pillow", "numpy"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


def run(root: Path, quick: bool, data_dir: Path | None = None) -> dict[str, Any]:
    """Measure every mode for every model present under ``root`` (quick: 1,000 images, one round, no 1-actor run)."""
    count, rounds = (1_000, 1) if quick else (10_000, 2)
    modes = [m for m in MODES if not (quick and m[0] == "ray, 1 actor")]
    models = [m for m in MODELS if (root / m / "manifest.json").is_file()]
    if not models:
        raise UserInputError(f"none of {', '.join(MODELS)} is exported under {root}")
    results: dict[str, Any] = {
        "what": f"torchzoo predict-batch on {count:,} MNIST test images (PNG files), batch size {BATCH_SIZE}",
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "quick": quick,
        "images": count,
        "rounds": rounds,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "versions": _versions(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "models": {},
    }
    with tempfile.TemporaryDirectory(prefix="torchzoo-batch-bench-") as work:
        images = Path(work) / "mnist-test"
        images.mkdir()
        labels = write_pngs(data_dir, images, count)
        for model in models:
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in modes}
            same: dict[str, bool] = {}
            accuracy = None
            for round_ in range(rounds):
                for name, extra in modes:
                    output = Path(work) / f"{model}-{name.replace(', ', '-').replace(' ', '')}-{round_}.jsonl"
                    runs[name].append(_one_run(root, model, images, output, extra))
                    local = Path(work) / f"{model}-local-{round_}.jsonl"
                    if name != "local":
                        same[name] = same.get(name, True) and output.read_bytes() == local.read_bytes()
                    elif accuracy is None:
                        accuracy = _accuracy(output, labels)
            results["models"][model] = {
                "accuracy": accuracy,
                "trained": _trained(root / model),
                "rows_identical_to_local": same,
                "runs": runs,
                "median": {name: _medians(r) for name, r in runs.items()},
            }
    results["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


def _medians(runs: list[dict[str, Any]]) -> dict[str, float | None]:
    keys = ("wall_rows_per_s", "job_rows_per_s", "ray_compute_rows_per_s", "wall_s", "job_s")
    return {k: None if runs[0][k] is None else round(statistics.median(r[k] for r in runs), 1) for k in keys}


def render(results: dict[str, Any]) -> str:
    """The results as a markdown section."""
    lines = [
        "## predict-batch throughput",
        "",
        f"{results['what']}; {results['when']}; {results['cpus']} CPUs ({results['platform']}); "
        + ", ".join(f"{k} {v}" for k, v in results["versions"].items())
        + f"; {results['rounds']} round(s), the median shown.",
        f"Load average (1, 5, 15 min) at the start {results['loadavg_start']}, at the end {results['loadavg_end']} "
        "(the machine is shared: each run's own load is in the JSON).",
        "",
        "| model | mode | images/s, job | images/s, actors' span | images/s, whole process | job s | process s "
        "| rows identical to local | load avg (1 min) during |",
        "|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for model, entry in results["models"].items():
        for mode, median in entry["median"].items():
            runs = entry["runs"][mode]
            loads = ", ".join(f"{r['loadavg_before'][0]:.1f}-{r['loadavg_after'][0]:.1f}" for r in runs)
            identical = "-" if mode == "local" else "yes" if entry["rows_identical_to_local"][mode] else "**no**"
            span = "-" if median["ray_compute_rows_per_s"] is None else f"{median['ray_compute_rows_per_s']:,.0f}"
            lines.append(
                f"| {model} | {mode} | {median['job_rows_per_s']:,.0f} | {span} | {median['wall_rows_per_s']:,.0f} "
                f"| {median['job_s']:.1f} | {median['wall_s']:.1f} | {identical} | {loads} |"
            )
    accuracies = []
    for model, entry in results["models"].items():
        trained = entry["trained"]
        known = "" if trained["test_accuracy"] is None else f" ({trained['test_accuracy']:.4f})"
        accuracies.append(f"{model} ({trained['profile']} profile) {entry['accuracy']:.4f}{known}")
    lines += [
        "",
        f"Accuracy of the rows' labels against MNIST's (in brackets: training's test accuracy, on all "
        f"10,000): {', '.join(accuracies)}.",
    ]
    lines += [
        "",
        "*job*: reading, predicting and writing every row (with Ray: after the instance is up, actors' start "
        "included); *actors' span*: first batch begun to last batch done on the actors' clocks; *whole process*: "
        "the command from start to exit (Python start-up, loading, and with Ray starting and stopping the instance).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m torchzoo.bench.batch_throughput ARTIFACTS [--quick] [--out DIR]
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="Write batch_results.json and .md here.")
    args = parser.parse_args()
    measured = run(args.root, args.quick)
    text = render(measured)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "batch_results.json").write_text(json.dumps(measured, indent=2) + "\n")
        (args.out / "batch_results.md").write_text(text)
    print(text)
