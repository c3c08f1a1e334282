"""``torchzoo bench``: runs on quick artifacts and writes well-formed results; ``--update`` merges rows.

Never timed: these tests check the shape and the consistency of what bench writes (every runtime
measured, p99 >= median, sizes equal to the files on disk, ratios computed from the same rounds), not
how fast anything is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from torchzoo import bench
from torchzoo.core import artifact
from torchzoo.core.errors import UserInputError
from torchzoo.train import registry

from support import Zoo, run_cli

#: openvino is in the dev extra, so CI measures every peer
RUNTIMES = {"torch_eager", "torchscript", "torch_compile", "openvino_cpu", "onnxruntime_cpu"}


def _bench(zoo: Zoo, out: Path, *args: str) -> dict[str, Any]:
    result = run_cli("bench", *args, "--quick", "--out", str(out), "--artifacts-dir", str(zoo.root))
    assert result.returncode == 0, result.stderr + result.stdout
    return json.loads((out / "results.json").read_text())


@pytest.fixture(scope="module")
def results_dir(zoo: Zoo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    zoo.exported("wine")
    zoo.exported("names")
    out = tmp_path_factory.mktemp("bench")
    _bench(zoo, out, "wine", "--cold-start-repeats", "1")
    return out


def test_bench_writes_every_runtime_size_and_ratio(zoo: Zoo, results_dir: Path) -> None:
    results = json.loads((results_dir / "results.json").read_text())
    assert results["quick"] is True and results["environment"]["cores"] >= 1
    (row,) = results["models"]
    assert row["model"] == "wine" and row["parameters"] > 0 and row["flops_per_sample"] > 0
    assert set(row["runtimes"]) >= RUNTIMES
    for name, runtime in row["runtimes"].items():
        batch1 = runtime["batch1"]
        assert 0 < batch1["median_ms"] <= batch1["p99_ms"], name
        assert runtime["throughput_per_s"] > 0 and runtime["gflops_per_s"] > 0, name
    for key in ("onnxruntime_vs_eager_b1", "onnxruntime_vs_torchscript_b1", "onnxruntime_vs_eager_large"):
        assert row[key] > 0, key
    manifest = artifact.read_manifest(zoo.directory("wine"))
    published = manifest["variants"]["published"]
    assert set(row["runtimes"]) >= {f"onnxruntime_cpu_{v}" for v in published if v != "fp32"}  # each variant
    for variant in set(published) - {"fp32"}:  # against fp32 at batch 1, 64 and the large batch
        assert min(row[f"{variant}_vs_fp32_{at}"] for at in ("b1", "b64", "large")) > 0, variant
    assert row["first_call_s"]["torch_compile"] > 0  # compile time, reported apart from the timed calls
    assert set(row["onnxruntime_vs_peers_b1"]) == {"torch_eager", "torchscript", "torch_compile", "openvino_cpu"}
    assert row["best_peer"] == min(row["onnxruntime_vs_peers_b1"], key=row["onnxruntime_vs_peers_b1"].get)
    for fmt, size in row["sizes_bytes"].items():
        assert size == (zoo.directory("wine") / manifest["formats"][fmt]["file"]).stat().st_size, fmt
    assert row["rounds"] == 3 and row["calls_per_round"] == 3  # --quick
    cold = results["cold_start"]
    assert cold["ratio_predict_over_torch"] > 0
    assert all(len(value["runs"]) == 1 for key, value in cold.items() if key != "ratio_predict_over_torch")
    assert set(results["session_tuning"]["wine"]) == {*bench.SESSION_VARIANTS, "default + IO binding"}
    markdown = (results_dir / "results.md").read_text()
    assert any(line.startswith("| wine | ") for line in markdown.splitlines())
    assert "Cold start" in markdown and "Rows from more than one run" not in markdown


def test_bench_update_replaces_only_the_rows_measured(zoo: Zoo, results_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "merged"
    out.mkdir()
    for name in ("results.json", "results.md"):
        (out / name).write_bytes((results_dir / name).read_bytes())
    before = json.loads((out / "results.json").read_text())
    merged = _bench(zoo, out, "names", "--update", "--cold-start-repeats", "0")
    # registry order, the earlier row untouched, the cold start kept
    order = [n for n in registry.names() if n in ("wine", "names")]
    assert [r["model"] for r in merged["models"]] == order
    assert next(r for r in merged["models"] if r["model"] == "wine") == before["models"][0]
    assert merged["cold_start"] == before["cold_start"]
    assert set(merged["session_tuning"]) == {"wine", "names"}
    assert len(merged["runs_merged"]) == 2 and merged["runs_merged"][1].endswith(": names")
    assert "Rows from more than one run" in (out / "results.md").read_text()


def test_bench_update_without_earlier_results_is_one_line_error(zoo: Zoo, tmp_path: Path) -> None:
    zoo.exported("wine")
    result = run_cli("bench", "wine", "--quick", "--update", "--out", str(tmp_path), "--artifacts-dir", str(zoo.root))
    assert result.returncode == 2
    assert "no earlier results" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr and not (tmp_path / "results.json").exists()


def test_merge_refuses_to_mix_quick_and_full_runs() -> None:
    earlier = {"quick": False, "environment": {"date": "d1"}, "models": [{"model": "wine"}]}
    now = {"quick": True, "environment": {"date": "d2"}, "models": [{"model": "names"}]}
    with pytest.raises(UserInputError, match="quick"):
        bench.merge_results(earlier, now)


@pytest.mark.parametrize(
    ("seconds_per_call", "calls"),
    [(1e-6, 20), (0.001, 20), (0.01, 5), (0.13, 3), (10.0, 3)],
)
def test_calls_per_round_shrink_for_slow_models_but_never_below_three(seconds_per_call: float, calls: int) -> None:
    assert bench.calls_per_round(seconds_per_call, bench.BenchConfig()) == calls
