"""Bench results on disk: results.json read and merged (``--update``), written with its results.md tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torchzoo.core import artifact
from torchzoo.core.errors import UserInputError, first_line
from torchzoo.train import registry

RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"


def read_results(out_dir: Path) -> dict[str, Any]:
    """The results.json of an earlier run (for ``--update``); a clear error when there is none."""
    path = out_dir / RESULTS_JSON
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserInputError(f"--update: no earlier results at {path}; run 'torchzoo bench' without --update") from None
    except (OSError, ValueError) as exc:
        raise UserInputError(f"--update: cannot read {path}: {first_line(exc)}") from None


def merge_results(earlier: dict[str, Any], now: dict[str, Any]) -> dict[str, Any]:
    """``earlier`` with the model rows and sections measured ``now`` put in (registry order kept by name).

    Each model row carries its own ``measured_at``; the environment of the latest run is kept, plus the
    list of runs merged, so a partial update is never mistaken for one run.
    """
    if earlier.get("quick") != now.get("quick"):
        raise UserInputError("--update: cannot merge a --quick run with a full run (or the other way round)")
    rows = {r["model"]: r for r in earlier.get("models", [])}
    rows.update({r["model"]: r for r in now["models"]})
    order = {spec.name: i for i, spec in enumerate(registry.models())}
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
    json_path, md_path = out_dir / RESULTS_JSON, out_dir / RESULTS_MD
    artifact.write_json_atomic(json_path, results)
    artifact.write_bytes_atomic(md_path, render_markdown(results).encode())
    return json_path, md_path


def _share(gflops: float, peak: float | None) -> str:
    return f" ({100 * gflops / peak:.0f}%)" if peak else ""


def _models_table(results: dict[str, Any]) -> list[str]:
    env = results["environment"]
    peak = env.get("matmul_peak_gflops")
    lines = [
        "| model | params | MFLOP/sample | eager b1 ms (p99) | TorchScript b1 ms (p99) | ORT CPU b1 ms (p99) "
        "| ORT vs eager b1 | ORT vs TS b1 | batch | eager /s | ORT /s | ORT GFLOP/s (% of peak) | ONNX MB "
        "| RSS +MB eager/TS/ORT |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results["models"]:
        rt = r["runtimes"]

        def lat(name: str, rt: dict = rt) -> str:
            return f"{rt[name]['batch1']['median_ms']:.3f} ({rt[name]['batch1']['p99_ms']:.3f})" if name in rt else "-"

        mem = r["rss_added_mb"]
        versus_ts = r.get("onnxruntime_vs_torchscript_b1")  # None: an artifact without TorchScript
        lines.append(
            f"| {r['model']} | {r['parameters']:,} | {r['flops_per_sample'] / 1e6:.3f} | {lat('torch_eager')} "
            f"| {lat('torchscript')} | {lat('onnxruntime_cpu')} | {r['onnxruntime_vs_eager_b1']:.2f}x "
            f"| {'-' if versus_ts is None else f'{versus_ts:.2f}x'} | {r['large_batch']} "
            f"| {rt['torch_eager']['throughput_per_s']:,.0f} | {rt['onnxruntime_cpu']['throughput_per_s']:,.0f} "
            f"| {rt['onnxruntime_cpu']['gflops_per_s']:.2f}{_share(rt['onnxruntime_cpu']['gflops_per_s'], peak)} "
            f"| {r['sizes_bytes'].get('onnx', 0) / 2**20:.2f} "
            f"| {mem.get('torch_eager', 0):.0f}/{mem.get('torchscript', 0):.0f}/{mem.get('onnxruntime_cpu', 0):.0f} |"
        )
    return lines


def _peers_table(results: dict[str, Any]) -> list[str]:
    """torch.compile, OpenVINO and the int8/fp16 variants next to onnxruntime fp32 (rows measured with them)."""
    lines = [
        "",
        "## Peers and variants (batch-1 median ms; ratios: other time / onnxruntime fp32 time, > 1: ORT faster)",
        "",
        "| model | ORT fp32 | ORT int8 | ORT fp16 | torch.compile (first call s) | OpenVINO | best peer | ORT vs best "
        "peer b1 | int8 vs fp32 b1 | int8 vs fp32 b64 | int8 vs fp32 batch | int8 / fp32 MB |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in results["models"]:
        if "onnxruntime_vs_best_peer_b1" not in r:
            continue
        rt, first = r["runtimes"], r.get("first_call_s", {})

        def ms(name: str, rt: dict = rt) -> str:
            return f"{rt[name]['batch1']['median_ms']:.3f}" if name in rt else "-"

        def ratio(key: str, r: dict = r) -> str:
            return f"{r[key]:.2f}x" if key in r else "-"

        compile_s = f" ({first['torch_compile']:.1f})" if "torch_compile" in first else ""
        sizes = r["sizes_bytes"]
        size = f"{sizes['onnx-int8'] / 2**20:.2f} / {sizes['onnx'] / 2**20:.2f}" if "onnx-int8" in sizes else "-"
        lines.append(
            f"| {r['model']} | {ms('onnxruntime_cpu')} | {ms('onnxruntime_cpu_int8')} | {ms('onnxruntime_cpu_fp16')} "
            f"| {ms('torch_compile')}{compile_s} | {ms('openvino_cpu')} | {r['best_peer']} "
            f"| {ratio('onnxruntime_vs_best_peer_b1')} | {ratio('int8_vs_fp32_b1')} | {ratio('int8_vs_fp32_b64')} "
            f"| {ratio('int8_vs_fp32_large')} "
            f"| {size} |"
        )
    return lines if len(lines) > 5 else []


def _session_table(tuning: dict[str, Any]) -> list[str]:
    lines = ["", "## onnxruntime session settings (batch-1 median ms)", ""]
    models = list(tuning)
    lines += ["| setting | " + " | ".join(models) + " |", "|---|" + "---:|" * len(models)]
    for setting in next(iter(tuning.values())):
        row = [f"{tuning[m][setting]['median_ms']:.4f}" for m in models]
        lines.append(f"| {setting} | " + " | ".join(row) + " |")
    return lines


def _cold_start_section(cold: dict[str, Any]) -> list[str]:
    lines = ["", "## Cold start: new process to printed answer (names, 'Rossi')", ""]
    for label, value in cold.items():
        if isinstance(value, dict):
            lines.append(f"- {label}: {value['median_s']:.2f} s (median)")
    lines.append(f"- ratio: {cold['ratio_predict_over_torch']:.2f} (target <= 0.33)")
    return lines


def _training_section(t: dict[str, Any]) -> list[str]:
    reached = t["ours_seconds_to_val_acc_0.75"]
    mark = f"after {reached:.0f} s" if reached is not None else "never (the recipe samples languages uniformly)"
    return [
        "",
        "## Training: names model",
        "",
        f"- tutorial loop on this machine: {t['tutorial_seconds_per_step'] * 1e3:.2f} ms/step "
        f"(timed over {t['tutorial_steps_timed']:,} steps) -> {t['tutorial_seconds_100k_steps']:.0f} s "
        "for its 100,000 steps",
        f"- ours (full recipe, batched): {t['ours_full_recipe_seconds']:.0f} s, test accuracy "
        f"{t['ours_test_accuracy']:.4f}; validation accuracy first >= 0.75: {mark}",
        f"- ratio ours / tutorial: {t['ratio_ours_over_tutorial']:.2f} (target <= 0.20)",
    ]


def render_markdown(results: dict[str, Any]) -> str:
    """results.md: the environment, the per-model table, then each optional section that was measured."""
    env = results["environment"]
    lines = [
        "# torchzoo benchmarks",
        "",
        f"{env['cpu']}, {env['cores']} cores; torch {env['torch']} ({env['torch_threads']} threads), "
        f"onnxruntime {env['onnxruntime']} ({', '.join(env['providers'])}); {env['date']}.",
        "Latency: batch 1, median and p99 over interleaved rounds. Ratios: median of per-round ratios "
        "(eager time / onnxruntime time; > 1 means onnxruntime is faster).",
    ]
    if results.get("runs_merged"):
        lines.append(f"Rows from more than one run (`bench --update`): {'; '.join(results['runs_merged'])}.")
    peak = env.get("matmul_peak_gflops")
    if peak:
        lines.append(
            f"Peak reference: a 1024x1024 float32 matmul (torch/MKL, {env['torch_threads']} threads) runs at "
            f"{peak:.0f} GFLOP/s here; '% of peak' compares each model's batch throughput with it."
        )
    lines += ["", *_models_table(results), *_peers_table(results)]
    if results.get("session_tuning"):
        lines += _session_table(results["session_tuning"])
    if results.get("cold_start"):
        lines += _cold_start_section(results["cold_start"])
    if results.get("training"):
        lines += _training_section(results["training"])
    return "\n".join(lines) + "\n"
