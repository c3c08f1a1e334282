"""``torchzoo serve --grpc-port``: the Open Inference Protocol over gRPC, spoken by Triton's own client
(tritonclient.grpc) and by a bare stub of the service: live/ready, metadata, infer with raw and typed
contents equal to the runtime, the bearer token as metadata, and errors as gRPC status codes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc
from tritonclient.utils import InferenceServerException

from torchzoo.serve_cli import load

from serving import Server, free_port, serving
from support import Zoo, heldout_inputs

MODELS = ("names", "wine", "mnist-mlp")
TOKEN = "s3cret"
AUTH = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def root(zoo: Zoo) -> Path:
    return zoo.exported(*MODELS)


@pytest.fixture(scope="module")
def grpc_port(root: Path, tmp_path_factory: pytest.TempPathFactory) -> int:
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with serving(root, *MODELS, "--grpc-port", str(port), "--token", TOKEN, log=log):
        yield port


def _client(port: int) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(f"127.0.0.1:{port}")


def _heldout(root: Path, model: str) -> np.ndarray:
    return heldout_inputs(root, model)[0][:8]


def test_live_ready_and_metadata(grpc_port: int) -> None:
    client = _client(grpc_port)
    assert client.is_server_live() and client.is_server_ready()  # open without the token, as REST's
    assert client.is_model_ready("wine", headers=AUTH)
    metadata = client.get_model_metadata("names", headers=AUTH, as_json=True)
    assert metadata["platform"] == "onnxruntime_onnx" and metadata["versions"] == ["1"]
    assert metadata["inputs"] == [{"name": "letters", "datatype": "FP32", "shape": ["-1", "-1", "57"]}]
    assert client.get_server_metadata(headers=AUTH).name == "torchzoo"


@pytest.mark.parametrize("model", MODELS)
def test_tritonclient_infer_equals_the_runtime(grpc_port: int, root: Path, model: str) -> None:
    array = _heldout(root, model)
    predictor = load(root / model)
    spec, output = predictor.manifest["inputs"][0], predictor.manifest["outputs"][0]["name"]
    tensor = triton.InferInput(spec["name"], list(array.shape), "FP32")
    tensor.set_data_from_numpy(array)  # raw_input_contents
    result = _client(grpc_port).infer(model, [tensor], request_id="g-7", headers=AUTH)
    assert result.get_response().id == "g-7"
    np.testing.assert_allclose(result.as_numpy(output), predictor.run([array])[0], rtol=0, atol=1e-6)


def test_typed_contents_from_a_bare_stub(grpc_port: int, root: Path) -> None:
    """A client that sends fp32_contents instead of raw bytes (KServe's own gRPC examples do)."""
    array = _heldout(root, "wine")
    request = pb.ModelInferRequest(model_name="wine", model_version="1")
    tensor = request.inputs.add(name="features", datatype="FP32", shape=list(array.shape))
    tensor.contents.fp32_contents.extend(array.ravel().tolist())
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        response = stub.ModelInfer(request, metadata=tuple(AUTH.items()), timeout=30)
        got = np.frombuffer(response.raw_output_contents[0], np.float32).reshape(list(response.outputs[0].shape))
        np.testing.assert_allclose(got, load(root / "wine").run([array])[0], rtol=0, atol=1e-6)
        tensor.contents.fp32_contents.append(1.0)  # one value too many
        with pytest.raises(grpc.RpcError) as refused:
            stub.ModelInfer(request, metadata=tuple(AUTH.items()), timeout=30)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        need = array.size
        assert f"{need + 1} values; shape {list(array.shape)} needs {need}" in refused.value.details()


def _refused(call: Callable[[], object], code: str, says: str) -> None:
    with pytest.raises(InferenceServerException) as refused:
        call()
    assert refused.value.status() == f"StatusCode.{code}", refused.value
    assert says in refused.value.message(), refused.value.message()


def test_errors_are_status_codes_with_one_line(grpc_port: int) -> None:
    client = _client(grpc_port)
    image = triton.InferInput("image", [1, 1, 28, 28], "FP32")
    image.set_data_from_numpy(np.zeros((1, 1, 28, 28), np.float32))
    _refused(lambda: client.infer("mnist-mlp", [image]), "UNAUTHENTICATED", "bearer token")
    _refused(lambda: client.infer("nope", [image], headers=AUTH), "NOT_FOUND", "unknown model 'nope'")
    _refused(lambda: client.infer("mnist-mlp", [image], model_version="2", headers=AUTH), "NOT_FOUND", "no version 2")
    nan = triton.InferInput("image", [1, 1, 28, 28], "FP32")
    nan.set_data_from_numpy(np.full((1, 1, 28, 28), np.nan, np.float32))
    _refused(lambda: client.infer("mnist-mlp", [nan], headers=AUTH), "INVALID_ARGUMENT", "NaN or infinite")
    wrong = triton.InferInput("image", [1, 1, 28, 27], "FP32")
    wrong.set_data_from_numpy(np.zeros((1, 1, 28, 27), np.float32))
    _refused(lambda: client.infer("mnist-mlp", [wrong], headers=AUTH), "INVALID_ARGUMENT", "shape [1, 1, 28, 27]")
    other = triton.InferInput("pixels", [1, 1, 28, 28], "FP32")
    other.set_data_from_numpy(np.zeros((1, 1, 28, 28), np.float32))
    _refused(lambda: client.infer("mnist-mlp", [other], headers=AUTH), "INVALID_ARGUMENT", "unknown input 'pixels'")
    asked = [triton.InferRequestedOutput("logits", class_count=3)]
    _refused(
        lambda: client.infer("mnist-mlp", [image], outputs=asked, headers=AUTH), "INVALID_ARGUMENT", "classification"
    )
    big = triton.InferInput("image", [3000, 1, 28, 28], "FP32")  # 9.4 MB, past the 8 MiB message limit
    big.set_data_from_numpy(np.zeros((3000, 1, 28, 28), np.float32))
    _refused(lambda: client.infer("mnist-mlp", [big], headers=AUTH), "RESOURCE_EXHAUSTED", "")
    assert client.is_server_live()  # and the server carries on


def test_grpc_and_rest_share_the_models(root: Path, tmp_path: Path) -> None:
    """One process, one set of sessions: REST and gRPC answer the same, and /metrics counts both."""
    port = free_port()
    with serving(root, "wine", "--grpc-port", str(port), log=tmp_path / "log") as server:
        server_rest: Server = server
        array = _heldout(root, "wine")[:1]
        tensor = triton.InferInput("features", list(array.shape), "FP32")
        tensor.set_data_from_numpy(array)
        via_grpc = _client(port).infer("wine", [tensor]).as_numpy("logits")
        body = {"inputs": [{"name": "features", "shape": [1, 13], "datatype": "FP32", "data": array.ravel().tolist()}]}
        status, answer = server_rest.json("/v2/models/wine/infer", body)
        assert status == 200
        np.testing.assert_allclose(np.asarray(answer["outputs"][0]["data"], np.float32), via_grpc.ravel(), atol=1e-6)
        metrics = server_rest.request("/metrics")[2].decode()
    assert 'endpoint="grpc_infer",model="wine",status="grpc_OK"' in metrics
