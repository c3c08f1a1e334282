"""``torchzoo serve``'s protocol extensions beyond inference: statistics as Triton reports them (read by
tritonclient's ``get_inference_statistics``, over REST and gRPC), and CORS for browser apps."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http

from serving import Server, free_port, serving
from support import Zoo

TOKEN = "s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ORIGIN = "http://app.example"


@pytest.fixture(scope="module")
def root(zoo: Zoo) -> Path:
    for name in ("wine", "names"):
        zoo.exported(name)
    return zoo.root


def _wine(rows: int) -> dict:
    data = np.random.default_rng(rows).standard_normal((rows, 13)).ravel().tolist()
    return {"inputs": [{"name": "features", "shape": [rows, 13], "datatype": "FP32", "data": data}]}


def test_statistics_count_what_was_served_over_rest_and_grpc(root: Path, tmp_path: Path) -> None:
    port = free_port()
    with serving(root, "wine", "names", "--grpc-port", str(port), log=tmp_path / "log") as server:
        assert server.json("/v2/models/wine/infer", _wine(2))[0] == 200
        assert server.json("/v2/models/wine/infer", _wine(3))[0] == 200
        bad = _wine(1)
        bad["inputs"][0]["data"][0] = "x"
        assert server.json("/v2/models/wine/infer", bad)[0] == 400
        grpc_client = triton_grpc.InferenceServerClient(f"127.0.0.1:{port}")
        tensor = triton_grpc.InferInput("features", [4, 13], "FP32")
        tensor.set_data_from_numpy(np.zeros((4, 13), np.float32))
        grpc_client.infer("wine", [tensor])
        http_client = triton_http.InferenceServerClient(server.url.removeprefix("http://"))
        rest = http_client.get_inference_statistics("wine")
        via_grpc = grpc_client.get_inference_statistics("wine", as_json=True)
        everything = server.json("/v2/models/stats")[1]
    (stats,) = rest["model_stats"]
    assert stats["name"] == "wine" and stats["version"] == "1"
    assert stats["inference_count"] == 2 + 3 + 4  # samples
    assert stats["execution_count"] == sum(b["compute_infer"]["count"] for b in stats["batch_stats"])
    assert {b["batch_size"] for b in stats["batch_stats"]} <= {2, 3, 4, 5, 6, 7, 9}
    inference = stats["inference_stats"]
    assert inference["success"]["count"] == 3 and inference["fail"]["count"] == 1
    assert inference["compute_infer"]["count"] == stats["execution_count"] and inference["compute_infer"]["ns"] > 0
    assert inference["success"]["ns"] >= inference["compute_infer"]["ns"]
    assert stats["last_inference"] > 0
    (grpc_stats,) = via_grpc["model_stats"]  # protobuf's JSON writes 64-bit integers as strings
    assert int(grpc_stats["inference_count"]) == 9 and int(grpc_stats["inference_stats"]["fail"]["count"]) == 1
    assert [s["name"] for s in everything["model_stats"]] == ["wine", "names"]
    assert everything["model_stats"][1]["inference_count"] == 0


def _preflight(server: Server, origin: str) -> tuple[int, dict[str, str]]:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    request = urllib.request.Request(server.url + "/v2/models/wine/infer", headers=headers, method="OPTIONS")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}


def test_cors_lets_the_named_origin_call_with_its_token(root: Path, tmp_path: Path) -> None:
    with serving(root, "wine", "--token", TOKEN, "--cors-origin", ORIGIN, log=tmp_path / "log") as server:
        status, headers = _preflight(server, ORIGIN)  # a preflight carries no token: answered before the check
        assert status == 200 and headers["access-control-allow-origin"] == ORIGIN
        assert "authorization" in headers["access-control-allow-headers"].lower()
        status, headers, _ = server.request(
            "/v2/models/wine/infer", json.dumps(_wine(1)).encode(), {**AUTH, "Origin": ORIGIN}
        )
        assert status == 200 and headers["access-control-allow-origin"] == ORIGIN
        assert "inference-header-content-length" in headers["access-control-expose-headers"].lower()
        status, headers = _preflight(server, "http://elsewhere.example")
        assert status == 400 and "access-control-allow-origin" not in headers
        status, headers, _ = server.request("/v2/models/wine/infer", json.dumps(_wine(1)).encode(), {"Origin": ORIGIN})
        assert status == 401  # CORS opens the door to a browser, not past the token


def test_cors_is_off_by_default(root: Path, tmp_path: Path) -> None:
    with serving(root, "wine", log=tmp_path / "log") as server:
        status, headers, _ = server.request("/v2/models/wine/infer", json.dumps(_wine(1)).encode(), {"Origin": ORIGIN})
        assert status == 200 and "access-control-allow-origin" not in {k.lower() for k in headers}
        assert _preflight(server, ORIGIN)[0] == 405
