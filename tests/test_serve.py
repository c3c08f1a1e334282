"""``torchzoo serve`` with real clients: tritonclient (the Triton client, written by others) speaks the Open
Inference Protocol to it, JSON and binary tensors; KServe v1 raw inputs; refusals; batching; operations."""

from __future__ import annotations

import base64
import concurrent.futures
import io
import json
import re
import shutil
import signal
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as triton
from PIL import Image

from torchzoo.serve_cli import load

from serving import Server, serving
from support import Zoo, heldout_inputs, run_cli

MODELS = ("names", "wine", "mnist-mlp")


@pytest.fixture(scope="module")
def root(zoo: Zoo) -> Path:
    return zoo.exported(*MODELS)


@pytest.fixture(scope="module")
def server(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Server:
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with serving(root, *MODELS, "--max-delay-ms", "5", log=log) as running:
        yield running


def _client(server: Server) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(server.url.removeprefix("http://"), network_timeout=30)


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("model", MODELS)
def test_tritonclient_infer_equals_the_runtime(server: Server, root: Path, model: str, binary: bool) -> None:
    client = _client(server)
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(model)
    predictor = load(root / model)
    (array,) = heldout_inputs(root, model)
    array = array[:8]
    spec = predictor.manifest["inputs"][0]
    tensor = triton.InferInput(spec["name"], list(array.shape), "FP32")
    tensor.set_data_from_numpy(array, binary_data=binary)
    output = predictor.manifest["outputs"][0]["name"]
    result = client.infer(
        model, [tensor], request_id="req-7", outputs=[triton.InferRequestedOutput(output, binary_data=binary)]
    )
    assert result.get_response()["id"] == "req-7"
    got = result.as_numpy(output)
    np.testing.assert_allclose(got, predictor.run([array])[0], rtol=0, atol=1e-6)


def test_tritonclient_metadata_marks_dynamic_axes(server: Server) -> None:
    client = _client(server)
    names = client.get_model_metadata("names")
    assert names["platform"] == "onnxruntime_onnx" and names["versions"] == ["1"]
    assert names["inputs"] == [{"name": "letters", "datatype": "FP32", "shape": [-1, -1, 57]}]
    assert client.get_model_metadata("mnist-mlp")["inputs"][0]["shape"] == [-1, 1, 28, 28]
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data", "statistics", "model_repository"]


def test_all_outputs_by_default_come_back_binary(server: Server, root: Path) -> None:
    """tritonclient with no output selection asks for every output as binary data."""
    client = _client(server)
    predictor = load(root / "names")
    letters = heldout_inputs(root, "names")[0][:3]
    tensor = triton.InferInput("letters", list(letters.shape), "FP32")
    tensor.set_data_from_numpy(letters)
    result = client.infer("names", [tensor])
    assert result.get_response()["outputs"][0]["parameters"]["binary_data_size"] == 3 * 18 * 4
    np.testing.assert_allclose(result.as_numpy("log_probs"), predictor.run([letters])[0], atol=1e-6)


def _png(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_v1_raw_inputs_give_predict_json(server: Server, root: Path) -> None:
    names = ["Rossi", "Nakamura", "Émile"]
    status, body = server.json("/v1/models/names:predict", {"instances": names})
    assert status == 200 and body["predictions"] == load(root / "names").predict(names)
    row = [13.2, 1.78, 2.14, 11.2, 100, 2.65, 2.76, 0.26, 1.28, 4.38, 1.05, 3.4, 1050]
    status, body = server.json("/v1/models/wine:predict", {"instances": [row, row]})
    assert status == 200 and body["predictions"] == load(root / "wine").predict([row, row])
    digit = (heldout_inputs(root, "mnist-mlp")[0][0, 0] * 127.5 + 127.5).round().clip(0, 255).astype(np.uint8)
    status, body = server.json("/v1/models/mnist-mlp:predict", {"instances": [{"b64": _png(digit)}]})
    expected = load(root / "mnist-mlp").predict([digit[None, None]])
    assert status == 200 and body["predictions"][0]["top"] == expected[0]["top"]


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        ({"name": "image", "shape": [1, 13], "datatype": "FP32", "data": [0] * 13}, "unknown input 'image'"),
        ({"name": "features", "shape": [1, 12], "datatype": "FP32", "data": [0] * 12}, "shape [1, 12]"),
        ({"name": "features", "shape": [1, 13], "datatype": "INT64", "data": [0] * 13}, "datatype 'INT64'"),
        (
            {"name": "features", "shape": [2, 13], "datatype": "FP32", "data": [0] * 13},
            "13 values; shape [2, 13] needs 26",
        ),
        ({"name": "features", "shape": [1, 13], "datatype": "FP32", "data": [float("nan")] * 13}, "NaN or infinite"),
        ({"name": "features", "shape": [1, 13], "datatype": "FP32", "data": ["x"] * 13}, "must be numbers"),
    ],
)
def test_bad_tensors_are_400_with_the_reason(server: Server, tensor: dict, message: str) -> None:
    status, body = server.json("/v2/models/wine/infer", {"inputs": [tensor]})
    assert status == 400 and message in body["error"], body


def test_unknown_model_bad_json_and_bad_raw_input(server: Server) -> None:
    assert server.json("/v2/models/nope")[0] == 404
    assert server.json("/v2/models/nope/infer", {"inputs": []})[0] == 404
    status, _, content = server.request("/v2/models/wine/infer", b"{not json")
    assert status == 400 and json.loads(content) == {"error": "the request body is not valid JSON"}
    status, body = server.json("/v1/models/names:predict", {"instances": ["R0ssi"]})
    assert status == 400 and "'0'" in body["error"]  # the runtime's own refusal, as the CLI says it
    status, body = server.json("/v1/models/mnist-mlp:predict", {"instances": [{"b64": "bm90IGFuIGltYWdl"}]})
    assert status == 400 and "instances[0]" in body["error"]


def test_body_limit_is_413(server: Server) -> None:
    status, _, content = server.request("/v2/models/wine/infer", b"x" * (8 * 1024 * 1024 + 1))
    assert status == 413 and "request body over" in json.loads(content)["error"]


def test_concurrent_requests_are_batched_and_equal_unbatched(root: Path, tmp_path: Path) -> None:
    predictor = load(root / "mnist-mlp")
    images = heldout_inputs(root, "mnist-mlp")[0][:48]
    with serving(root, "mnist-mlp", "--max-batch", "64", "--max-delay-ms", "50", log=tmp_path / "log") as server:

        def one(i: int) -> np.ndarray:
            tensor = {"name": "image", "shape": [1, 1, 28, 28], "datatype": "FP32", "data": images[i].ravel().tolist()}
            status, body = server.json("/v2/models/mnist-mlp/infer", {"inputs": [tensor]})
            assert status == 200, body
            return np.asarray(body["outputs"][0]["data"], np.float32)

        with concurrent.futures.ThreadPoolExecutor(48) as pool:
            outputs = list(pool.map(one, range(len(images))))
        metrics = server.request("/metrics")[2].decode()
    for i, got in enumerate(outputs):
        np.testing.assert_allclose(got, predictor.run([images[i : i + 1]])[0][0], rtol=0, atol=1e-6)
    runs = float(re.search(r'torchzoo_batch_size_count\{model="mnist-mlp"\} (\S+)', metrics).group(1))
    total = float(re.search(r'torchzoo_batch_size_sum\{model="mnist-mlp"\} (\S+)', metrics).group(1))
    assert total >= 48 and runs < 48  # fewer runs than requests: requests were gathered into batches


def test_token_guards_everything_but_health(root: Path, tmp_path: Path) -> None:
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<p>digits</p>")
    with serving(root, "wine", "--token", "s3cret", "--static", str(web), log=tmp_path / "log") as server:
        assert server.request("/v2/health/live")[0] == 200
        assert server.request("/v2/health/ready")[0] == 200
        for path in ("/v2", "/v2/models/wine", "/metrics", "/static/index.html"):
            assert server.request(path)[0] == 401, path
        assert server.request("/v2/models/wine", headers={"Authorization": "Bearer wrong"})[0] == 401
        assert server.request("/v2/models/wine", headers={"Authorization": "Bearer s3cret"})[0] == 200
        status, _, content = server.request("/static/", headers={"Authorization": "Bearer s3cret"})
        assert status == 200 and content == b"<p>digits</p>"  # --static serves the directory, index.html at /


def test_metrics_and_access_log(server: Server) -> None:
    server.json("/v1/models/names:predict", {"instances": ["Rossi"]})
    text = server.request("/metrics")[2].decode()
    assert 'torchzoo_requests_total{endpoint="predict",model="names",status="200"}' in text
    assert "torchzoo_request_seconds_bucket" in text and "torchzoo_queue_depth" in text
    deadline = time.monotonic() + 10  # the access log is written every 0.2 s
    while True:
        lines = [json.loads(line) for line in server.log.read_text().splitlines() if line.startswith("{")]
        if any(r["path"] == "/v1/models/names:predict" and r["status"] == 200 and r["ms"] > 0 for r in lines):
            break
        assert time.monotonic() < deadline, lines
        time.sleep(0.1)


def test_sigterm_drains_requests_in_flight(root: Path, tmp_path: Path) -> None:
    """Requests waiting in a batch when SIGTERM arrives are all answered before the server exits."""
    images = heldout_inputs(root, "mnist-mlp")[0][:16]
    with serving(root, "mnist-mlp", "--max-delay-ms", "1500", log=tmp_path / "log") as server:

        def one(i: int) -> int:
            tensor = {"name": "image", "shape": [1, 1, 28, 28], "datatype": "FP32", "data": images[i].ravel().tolist()}
            return server.json("/v2/models/mnist-mlp/infer", {"inputs": [tensor]})[0]

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            futures = [pool.submit(one, i) for i in range(16)]
            time.sleep(0.7)  # the requests sit in the batcher, which waits up to 1.5 s to fill
            server.process.send_signal(signal.SIGTERM)
            statuses = [f.result(timeout=60) for f in futures]
        # uvicorn re-raises SIGTERM once it has drained, so the exit is by that signal, after the answers
        assert server.process.wait(timeout=60) in (0, -signal.SIGTERM)
    assert statuses == [200] * 16


def test_a_model_that_fails_verification_is_not_served(root: Path, tmp_path: Path) -> None:
    copy = tmp_path / "artifacts"
    shutil.copytree(root / "wine", copy / "wine")
    shutil.copytree(root / "wine", copy / "broken")
    graph = copy / "broken" / "model.onnx"
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))
    log = tmp_path / "log"
    with serving(copy, "all", log=log) as server:
        assert server.request("/v2/models/wine")[0] == 200
        assert server.request("/v2/models/broken")[0] == 404
    assert re.search(r"not serving broken: .*sha256", log.read_text())


#: a server process in which importing torch, torchvision or the training rooms fails, and says so
REFUSE_TORCH = """
import sys


class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision") or name.startswith(("torchzoo.train", "torchzoo.export")):
            sys.stderr.write(f"IMPORT REFUSED: {name}\\n")
            raise ImportError(f"{name} is refused in this server")


sys.meta_path.insert(0, Refuse())
"""


def test_a_serving_process_never_imports_torch(root: Path, tmp_path: Path) -> None:
    log = tmp_path / "log"
    with serving(root, "names", "mnist-mlp", prelude=REFUSE_TORCH, log=log) as server:
        assert server.json("/v1/models/names:predict", {"instances": ["Rossi"]})[0] == 200
        tensor = {"name": "image", "shape": [1, 1, 28, 28], "datatype": "FP32", "data": [0.0] * 784}
        assert server.json("/v2/models/mnist-mlp/infer", {"inputs": [tensor]})[0] == 200
        assert server.request("/metrics")[0] == 200
    assert "IMPORT REFUSED" not in log.read_text()


def test_routes_methods_and_versions_answer_in_the_protocols_error_shape(server: Server) -> None:
    status, headers, content = server.request("/v2/models/wine/infer")  # GET on a POST route
    assert status == 405 and "POST" in headers["allow"] and "error" in json.loads(content)
    status, _, content = server.request("/v2/no/such/route")
    assert status == 404 and json.loads(content) == {"error": "Not Found"}
    assert server.json("/v2/models/wine/versions/1/ready") == (200, {"name": "wine", "ready": True})
    status, body = server.json("/v2/models/wine/versions/2")
    assert status == 404 and body == {"error": "model 'wine' has no version 2; it has 1"}
    tensor = {"name": "features", "shape": [1, 13], "datatype": "FP32", "data": [0] * 13}
    assert server.json("/v2/models/wine/versions/2/infer", {"inputs": [tensor]})[0] == 404
    status, body = server.json("/v2/models/wine/versions/1/infer", {"inputs": [tensor], "id": "v1"})
    assert status == 200 and body["id"] == "v1" and body["model_version"] == "1"


def test_a_port_in_use_or_an_unknown_host_is_one_line_exit_2(root: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = run_cli("serve", "wine", "--artifacts-dir", str(root), "--port", port, timeout=60)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"torchzoo: error: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]
    result = run_cli("serve", "wine", "--artifacts-dir", str(root), "--host", "no-such-host.invalid", timeout=60)
    assert result.returncode == 2 and result.stderr.startswith("torchzoo: error: --host no-such-host.invalid")
    assert len(result.stderr.strip().splitlines()) == 1
