"""The model repository extension and versions: ``torchzoo serve --model-control explicit`` over a Triton-layout
repository (``export --format triton``) loads, reloads and unloads models at run time through tritonclient
(REST and gRPC), serves every version present (the unversioned routes the latest), reloads under load with
no failed request, and refuses a version that fails verification while the old keeps serving."""

from __future__ import annotations

import concurrent.futures
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from tritonclient.utils import InferenceServerException

from serving import Server, free_port, serving
from support import Zoo, run_cli

ROW = [[13.2, 1.78, 2.14, 11.2, 100, 2.65, 2.76, 0.26, 1.28, 4.38, 1.05, 3.4, 1050]]


@pytest.fixture(scope="module")
def exported(zoo: Zoo) -> Path:
    return zoo.exported("wine")


@pytest.fixture
def repository(exported: Path, tmp_path: Path) -> Path:
    """A Triton-layout repository holding wine version 1 (written by torchzoo export --format triton)."""
    repo = tmp_path / "repo"
    result = run_cli(
        "export", "wine", "--format", "triton", "--repository", str(repo), "--artifacts-dir", str(exported)
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (repo / "wine").iterdir() if p.is_dir()) == ["1"]
    return repo


def _infer(server: Server, version: str | None = None) -> tuple[int, dict]:
    path = f"/v2/models/wine/versions/{version}/infer" if version else "/v2/models/wine/infer"
    tensor = {"name": "features", "shape": [1, 13], "datatype": "FP32", "data": ROW[0]}
    return server.json(path, {"inputs": [tensor]})


def test_reload_under_load_fails_no_request(repository: Path, tmp_path: Path) -> None:
    grpc_port = free_port()
    args = ("wine", "--model-control", "explicit", "--grpc-port", str(grpc_port), "--max-delay-ms", "5")
    with serving(repository, *args, log=tmp_path / "log") as server:
        expected = np.asarray(_infer(server)[1]["outputs"][0]["data"])
        stop = threading.Event()
        answers: list[tuple[int, str, list[float]]] = []

        def hammer() -> None:
            while not stop.is_set():
                status, body = _infer(server)
                answers.append((status, body.get("model_version", ""), body.get("outputs", [{}])[0].get("data")))

        http = triton_http.InferenceServerClient(server.url.removeprefix("http://"))
        grpc = triton_grpc.InferenceServerClient(f"127.0.0.1:{grpc_port}")
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            workers = [pool.submit(hammer) for _ in range(4)]
            time.sleep(1)
            http.load_model("wine")  # a reload of the same version
            time.sleep(0.5)
            shutil.copytree(repository / "wine" / "1", repository / "wine" / "2")
            grpc.load_model("wine")  # a new version: served from now on, the old finishing what it holds
            time.sleep(0.5)
            http.load_model("wine")
            time.sleep(1)
            stop.set()
            for worker in workers:
                worker.result(timeout=60)
        assert http.get_model_metadata("wine")["versions"] == ["1", "2"]
        assert _infer(server, "1")[1]["model_version"] == "1" and _infer(server)[1]["model_version"] == "2"
        index = http.get_model_repository_index()
    assert len(answers) > 50 and {status for status, _, _ in answers} == {200}, answers[:3]
    for _, _, data in answers:
        np.testing.assert_allclose(data, expected, rtol=0, atol=1e-6)
    assert [(m["name"], m["version"], m["state"]) for m in index] == [("wine", "1", "READY"), ("wine", "2", "READY")]
    assert {version for _, version, _ in answers} == {"1", "2"}  # served by the old version, then the new


def test_a_version_that_fails_verification_is_refused_and_the_old_keeps_serving(
    repository: Path, tmp_path: Path
) -> None:
    with serving(repository, "wine", "--model-control", "explicit", log=tmp_path / "log") as server:
        damaged = repository / "wine" / "2"
        shutil.copytree(repository / "wine" / "1", damaged)
        graph = bytearray((damaged / "model.onnx").read_bytes())
        graph[len(graph) // 2] ^= 0xFF
        (damaged / "model.onnx").write_bytes(bytes(graph))
        status, body = server.json("/v2/repository/models/wine/load", {})
        assert status == 400 and "version 2" in body["error"] and "sha256" in body["error"], body
        assert server.json("/v2/models/wine")[1]["versions"] == ["1"]
        assert _infer(server)[0] == 200
        status, body = server.json("/v2/repository/models/passwd/load", {})
        assert status == 404 and body == {"error": "no model directory 'passwd' under the artifact root"}
        assert server.json("/v2/repository/models/..%2F..%2Fetc/load", {})[0] == 404  # never a path


def test_unload_and_load_over_grpc(repository: Path, tmp_path: Path) -> None:
    grpc_port = free_port()
    args = ("--model-control", "explicit", "--grpc-port", str(grpc_port))
    with serving(repository, *args, log=tmp_path / "log") as server:  # explicit, no model named: none loaded
        client = triton_grpc.InferenceServerClient(f"127.0.0.1:{grpc_port}")
        index = client.get_model_repository_index(as_json=True)["models"]
        assert [(m["name"], m["version"], m["state"]) for m in index] == [("wine", "1", "UNAVAILABLE")]
        assert _infer(server)[0] == 404
        client.load_model("wine")
        assert client.is_model_ready("wine") and _infer(server)[0] == 200
        client.unload_model("wine")
        with pytest.raises(InferenceServerException, match="unknown model 'wine'"):
            client.is_model_ready("wine")
        assert _infer(server)[0] == 404


def test_model_control_none_refuses_load_and_unload(repository: Path, tmp_path: Path) -> None:
    with serving(repository, "wine", log=tmp_path / "log") as server:
        for action in ("load", "unload"):
            status, body = server.json(f"/v2/repository/models/wine/{action}", {})
            assert status == 400 and "--model-control explicit" in body["error"]
        assert server.json("/v2/repository/index", {})[1] == [{"name": "wine", "version": "1", "state": "READY"}]
        assert _infer(server)[1]["model_version"] == "1"
