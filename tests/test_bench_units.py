"""The load tests' own logic, without running them (they need wrk, Ray and trained models: ``torchzoo bench``):
wrk's report parsed, medians over rounds, the reference servers of the HTTP load test, the predict-batch
throughput's input images and its refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from PIL import Image

from torchzoo.bench import batch_throughput, ray_serve_load, serve_load, serve_refs
from torchzoo.core.errors import UserInputError

from support import asgi_request

WRK = """Running 4s test @ http://127.0.0.1:8000/v2/models/names/infer
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.10ms  512.00us   9.80ms   80.00%
    Req/Sec     3.80k   210.00     4.10k    75.00%
  Latency Distribution
     50%  {p50}
     75%    2.30ms
     90%    2.60ms
     99%  {p99}
  15200 requests in 4.00s, 2.10MB read
{errors}Requests/sec:   3800.25
Transfer/sec:    537.60KB
"""


def test_wrk_reports_are_parsed_with_every_request_counted() -> None:
    failures = "  Socket errors: connect 0, read 2, write 0, timeout 1\n  Non-2xx or 3xx responses: 5\n"
    parsed = serve_load.parse_wrk(WRK.format(p50="850.00us", p99="1.20s", errors=failures))
    assert parsed == {
        "requests_per_s": 3800.25,
        "p50_ms": pytest.approx(0.85),
        "p99_ms": pytest.approx(1200.0),
        "requests": 15200,
        "answered": 15195,
        "refused": 5,
        "lost": 3,
    }
    clean = serve_load.parse_wrk(WRK.format(p50="2.05ms", p99="4.10ms", errors=""))
    assert (clean["p50_ms"], clean["p99_ms"]) == (pytest.approx(2.05), pytest.approx(4.1))
    assert (clean["answered"], clean["refused"], clean["lost"]) == (15200, 0, 0)


def test_ray_load_rows_become_medians_per_model_and_kind() -> None:
    model = ray_serve_load.MODELS[0]
    rows = [
        {"model": model, "tensors": "json", "replicas": replicas, "requests_per_s": rate}
        for replicas, rate in [(0, 100.0), (0, 300.0), (1, 50.0), (1, 70.0), (2, 110.0), (2, 130.0), (2, 90.0)]
    ]
    summary = {(r["model"], r["tensors"]): r for r in ray_serve_load.summarize(rows)}
    assert set(summary) == {(m, k) for m in ray_serve_load.MODELS for k in ("json", "binary")}
    measured = summary[(model, "json")]
    assert (measured["plain"], measured["ray_1"], measured["ray_2"]) == (200.0, 60.0, 110.0)
    assert measured["two_vs_one"] == pytest.approx(110 / 60)
    assert summary[(model, "binary")] == {
        "model": model,
        "tensors": "binary",
        "plain": None,
        "ray_1": None,
        "ray_2": None,
        "two_vs_one": None,
    }


def test_the_floor_reference_reads_the_body_and_answers_empty_json() -> None:
    status, _, body = asgi_request(serve_refs.floor_app(), "POST", "/v2/models/any/infer", b'{"inputs": []}')
    assert (status, body) == (200, b"{}")


def test_the_baseline_reference_runs_the_graph_per_request(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "two"], ["y"])],
        "double",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])],
        initializer=[helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    onnx.save(model, str(tmp_path / "model.onnx"))
    request = {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4.5]}]}
    app = serve_refs.baseline_app(str(tmp_path / "model.onnx"))
    status, _, body = asgi_request(app, "POST", "/v2/models/double/infer", json.dumps(request).encode())
    assert status == 200 and json.loads(body) == {"outputs": [{"data": [2.0, 4.0, 6.0, 9.0]}]}


def test_the_batch_benchmark_writes_mnist_test_images_named_by_their_labels(tmp_path: Path, data_root: Path) -> None:
    from torchzoo.train.datasets import read_mnist

    labels = batch_throughput.write_pngs(data_root, tmp_path, 5)
    assert labels == [7, 2, 1, 0, 4]  # MNIST's first test labels
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{i:05d}_{t}.png" for i, t in enumerate(labels)]
    test = read_mnist(data_root / "MNIST" / "raw").test
    for i, label in enumerate(labels):
        assert np.array_equal(np.asarray(Image.open(tmp_path / f"{i:05d}_{label}.png")), test.images[i])


def test_the_batch_benchmark_refuses_a_root_without_its_models(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="none of mnist-mlp, mnist-lstm is exported under"):
        batch_throughput.run(tmp_path, quick=True)


def test_the_batch_benchmark_renders_one_row_per_model_and_mode() -> None:
    run = {
        "wall_rows_per_s": 100.0,
        "job_rows_per_s": 200.0,
        "ray_compute_rows_per_s": None,
        "wall_s": 10.0,
        "job_s": 5.0,
        "loadavg_before": [1.0, 1.0, 1.0],
        "loadavg_after": [2.0, 1.0, 1.0],
    }
    ray_run = {**run, "ray_compute_rows_per_s": 400.0}
    median = batch_throughput._medians([run, {**run, "job_rows_per_s": 300.0}, {**run, "job_rows_per_s": 250.0}])
    assert median["job_rows_per_s"] == 250.0 and median["ray_compute_rows_per_s"] is None
    results = {
        "what": "predict-batch on 1,000 images",
        "when": "2026-01-01 00:00 UTC",
        "cpus": 2,
        "platform": "Linux",
        "versions": {"python": "3.11"},
        "rounds": 1,
        "loadavg_start": [0.5, 0.5, 0.5],
        "loadavg_end": [1.5, 1.0, 1.0],
        "models": {
            "mnist-mlp": {
                "accuracy": 0.9,
                "trained": {"profile": "quick", "test_accuracy": 0.91},
                "rows_identical_to_local": {"ray, 2 actors": True},
                "runs": {"local": [run], "ray, 2 actors": [ray_run]},
                "median": {
                    "local": batch_throughput._medians([run]),
                    "ray, 2 actors": batch_throughput._medians([ray_run]),
                },
            }
        },
    }
    text = batch_throughput.render(results)
    rows = [line for line in text.splitlines() if line.startswith("| mnist-mlp |")]
    assert rows == [
        "| mnist-mlp | local | 200 | - | 100 | 5.0 | 10.0 | - | 1.0-2.0 |",
        "| mnist-mlp | ray, 2 actors | 200 | 400 | 100 | 5.0 | 10.0 | yes | 1.0-2.0 |",
    ]
    assert "mnist-mlp (quick profile) 0.9000 (0.9100)" in text
