"""The peers' load test, in its parts: h2load's output read (gRPC errors answered with HTTP 200 are counted as
refused by their size), the medians of interleaved rounds, and the best peer (never one that refused)."""

from __future__ import annotations

import pytest

from torchzoo.bench.serve_peers import parse_h2load, summarize

H2LOAD = """
finished in 2.00s, 1000.00 req/s, 81.00KB/s
requests: 2000 total, 2000 started, 2000 done, 1990 succeeded, 10 failed, 10 errored, 0 timeout
status codes: 1990 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 275.23KB (281832) total, 6.45KB (6600) headers (space savings 95.93%), 158.20KB (160380) data
"""


def test_h2load_output_counts_every_request() -> None:
    log = "\n".join(f"{i}\t200\t{1000 * (1 + i % 100)}" for i in range(1990))
    result = parse_h2load(H2LOAD, log, good_bytes=81)
    assert result["requests"] == 2000 and result["lost"] == 10  # failed: lost
    assert result["refused"] == 10  # 1990 succeeded, data for 1980 good answers: 10 were gRPC errors
    assert result["answered"] == 1980 and result["requests_per_s"] == pytest.approx(995.0)
    assert result["p50_ms"] == pytest.approx(50.5, abs=1) and result["p99_ms"] == pytest.approx(99, abs=1.1)


def _row(server: str, tensors: str, rate: float, refused: int = 0, p99: float = 10.0) -> dict:
    return {"server": server, "tensors": tensors, "requests_per_s": rate, "p50_ms": 1.0, "p99_ms": p99,
            "lost": 0, "refused": refused, "cpu_ms_per_request": None}  # fmt: skip


def test_medians_and_the_best_peer() -> None:
    rows = [_row("torchzoo", "json", r) for r in (4000, 4200, 3000)]
    rows += [_row("torchzoo", "binary", r) for r in (6000, 6100, 5900)]
    rows += [_row("torchzoo", "grpc", r, p99=60.0) for r in (3000, 3100, 2900)]
    rows += [_row("kserve", "binary", 9000, refused=100)] * 3  # refused: not a peer's throughput
    rows += [_row("mlserver", "json", r) for r in (1000, 1200, 1100)]
    results = summarize(rows, {}, seconds=10, rounds=3)
    assert results["best_peer"] == "mlserver json"
    medians = {(m["server"], m["tensors"]): m["requests_per_s"] for m in results["medians"]}
    assert medians[("torchzoo", "json")] == 4000 and medians[("mlserver", "json")] == 1100
    targets = results["targets"]
    assert targets["rest_json_vs_best_peer"] == pytest.approx(4000 / 1100)
    assert targets["grpc_vs_rest_binary"] == pytest.approx(3000 / 6000)
    assert targets["torchzoo_p99_ms"] == 60.0 and results["lost"] == 0
