"""The server's parts in process, without HTTP: the dynamic batcher against the real runtime (batched rows
equal unbatched runs), its gathering rules, and the Open Inference Protocol's binary tensor extension."""

from __future__ import annotations

import ast
import asyncio
import json
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from torchzoo.core.tensor_spec import TensorSpec
from torchzoo.serve_cli import load
from torchzoo.serve_cli.server.batching import Batcher
from torchzoo.serve_cli.server.protocol import ProtocolError, decode_request, encode_response, split_body

from support import Zoo

TIMEOUT = 60  # every asyncio test is bounded


def _gathered(batcher: Batcher, requests: Sequence[tuple[np.ndarray, ...]]) -> list[list[np.ndarray]]:
    async def main() -> list[list[np.ndarray]]:
        batcher.start()
        try:
            return await asyncio.wait_for(asyncio.gather(*(batcher.run(r) for r in requests)), TIMEOUT)
        finally:
            await batcher.stop()

    return asyncio.run(main())


@pytest.mark.parametrize("model", ["names", "mnist-mlp", "wine"])
def test_batched_rows_equal_unbatched_runs(zoo: Zoo, model: str) -> None:
    predictor = load(zoo.exported(model) / model)
    rng = np.random.default_rng(0)
    spec = predictor.manifest["inputs"][0]
    requests = []
    for i in range(24):
        if model == "names":  # one-hot names of three lengths: only equal lengths can share a batch
            length = 3 + i % 3
            x = np.eye(spec["shape"][2], dtype=np.float32)[rng.integers(0, 52, (1 + i % 2, length))]
        else:
            x = rng.standard_normal((1 + i % 3, *spec["shape"][1:])).astype(np.float32)
        requests.append((x,))
    sizes: list[int] = []
    batcher = Batcher(predictor.run, max_batch=64, max_delay=0.05, on_batch=sizes.append)
    batcher.incoming = len(requests)  # as the app counts requests still being decoded: the batch waits for them
    outputs = _gathered(batcher, requests)
    for (x,), got in zip(requests, outputs, strict=True):
        want = predictor.run([x])
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert g.shape == w.shape
            np.testing.assert_allclose(g, w, rtol=0, atol=1e-6)
    assert sum(sizes) == sum(x.shape[0] for (x,) in requests)
    assert len(sizes) < len(requests)  # requests shared runs
    if model == "names":
        assert len(sizes) >= 3  # never two lengths in one run


def _echo(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    return [arrays[0] * 2]


def test_a_batch_holds_at_most_max_batch_samples() -> None:
    sizes: list[int] = []
    batcher = Batcher(_echo, max_batch=8, max_delay=0.05, on_batch=sizes.append)
    batcher.incoming = 1
    requests = [(np.full((3, 2), i, np.float32),) for i in range(10)] + [(np.zeros((20, 2), np.float32),)]
    outputs = _gathered(batcher, requests)
    for (x,), (got,) in zip(requests, outputs, strict=True):
        np.testing.assert_array_equal(got, x * 2)
    assert sum(sizes) == 50 and max(s for s in sizes if s != 20) <= 8 and 20 in sizes  # a larger request runs alone


def test_a_lone_request_does_not_wait_for_the_delay() -> None:
    """With nothing else on its way, the batch runs at once: a 30 s delay is never spent (bounded at 10 s)."""
    batcher = Batcher(_echo, max_batch=64, max_delay=30)

    async def main() -> list[np.ndarray]:
        batcher.start()
        try:
            return await asyncio.wait_for(batcher.run((np.ones((1, 2), np.float32),)), 10)
        finally:
            await batcher.stop()

    np.testing.assert_array_equal(asyncio.run(main())[0], [[2, 2]])


def test_a_failed_run_fails_its_requests_and_the_worker_carries_on() -> None:
    def run(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        if np.any(arrays[0] < 0):
            raise ValueError("negative")
        return [arrays[0] + 1]

    batcher = Batcher(run, max_batch=4, max_delay=0.01)

    async def main() -> tuple[BaseException | list[np.ndarray], list[np.ndarray]]:
        batcher.start()
        try:
            bad = await asyncio.wait_for(asyncio.gather(batcher.run((-np.ones((1, 1)),)), return_exceptions=True), 10)
            good = await asyncio.wait_for(batcher.run((np.ones((1, 1)),)), 10)
            return bad[0], good
        finally:
            await batcher.stop()

    bad, good = asyncio.run(main())
    assert isinstance(bad, ValueError) and str(bad) == "negative"
    np.testing.assert_array_equal(good[0], [[2]])


def test_a_poisoned_request_fails_alone_among_its_batch() -> None:
    """One request whose rows fail the run (as an output that is no answer does) is answered with its own
    error; the requests gathered into the same batch get their rows."""

    def run(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        if np.any(arrays[0] < 0):
            raise ValueError("negative")
        return [arrays[0] + 1]

    sizes: list[int] = []
    batcher = Batcher(run, max_batch=64, max_delay=0.05, on_batch=sizes.append)
    batcher.incoming = 1  # the batch waits for company, so all of them are gathered into one
    requests = [(np.full((1, 1), float(i)),) for i in range(20)]
    requests.insert(7, (-np.ones((1, 1)),))

    async def main() -> list[BaseException | list[np.ndarray]]:
        batcher.start()
        try:
            runs = (batcher.run(r) for r in requests)
            return await asyncio.wait_for(asyncio.gather(*runs, return_exceptions=True), TIMEOUT)
        finally:
            await batcher.stop()

    answers = asyncio.run(main())
    assert isinstance(answers[7], ValueError)
    for i, ((x,), answer) in enumerate(zip(requests, answers, strict=True)):
        if i != 7:
            assert not isinstance(answer, BaseException), (i, answer)
            np.testing.assert_array_equal(answer[0], x + 1)
    assert sizes[0] > 1  # they did share a run first


SPEC = [TensorSpec("image", ("batch", 1, 2, 2))]


def _binary_body(array: np.ndarray, **extra: object) -> tuple[bytes, str]:
    tensor = {"name": "image", "shape": list(array.shape), "datatype": "FP32"}
    tensor["parameters"] = {"binary_data_size": array.nbytes}
    header = json.dumps({"inputs": [tensor], **extra}).encode()
    return header + array.astype("<f4").tobytes(), str(len(header))


def test_binary_tensors_round_trip() -> None:
    array = np.arange(8, dtype=np.float32).reshape(2, 1, 2, 2)
    body, length = _binary_body(array, id="x", parameters={"binary_data_output": True})
    request = decode_request(*split_body(body, length), SPEC, ["logits"])
    np.testing.assert_array_equal(request.arrays[0], array)
    assert request.id == "x" and request.binary_outputs == {"logits"}
    logits = np.array([[0.5, -1.0], [2.0, 3.0]], np.float32)
    content, headers = encode_response("m", "1", request, ["logits"], [logits])
    size = int(headers["inference-header-content-length"])
    header = json.loads(content[:size])
    assert header["id"] == "x" and header["outputs"][0]["parameters"] == {"binary_data_size": 16}
    np.testing.assert_array_equal(np.frombuffer(content[size:], "<f4").reshape(2, 2), logits)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"length": "12x"}, "Inference-Header-Content-Length is not a number"),
        ({"length": "100000"}, "outside the body"),
        ({"extra": b"\0\0\0\0"}, "4 bytes of binary data are not claimed"),
        ({"cut": 4}, "the body holds 12 of its 16 binary bytes"),
        ({"size": 12}, "binary_data_size 12; shape [1, 1, 2, 2] needs 16"),
        ({"nan": True}, "holds NaN or infinite values"),
    ],
)
def test_bad_binary_tensors_are_refused_with_the_reason(change: dict, message: str) -> None:
    array = np.full((1, 1, 2, 2), np.nan if change.get("nan") else 1.0, np.float32)
    body, length = _binary_body(array)
    if "size" in change:
        body = body.replace(b'"binary_data_size": 16', b'"binary_data_size": %d' % change["size"])
    body = body[: len(body) - change.get("cut", 0)] + change.get("extra", b"")
    with pytest.raises(ProtocolError, match=message.replace("[", r"\[").replace("]", r"\]")) as caught:
        decode_request(*split_body(body, change.get("length", length)), SPEC, ["logits"])
    assert caught.value.status == 400


#: the modules of ``serve --ray``, imported only then (tests/test_ray_serve.py: plain serve never loads ray)
RAY_MODULES = {"ray_deploy.py", "ray_router.py"}


def test_the_server_package_imports_only_the_runtime_and_the_web_stack() -> None:
    """Read from the source: every top-level package the server names is allowed (the subprocess test in
    test_serve.py shows a started server never loads torch)."""
    allowed = {"numpy", "onnxruntime", "PIL", "starlette", "uvicorn", "prometheus_client", "orjson", "torchzoo"}
    allowed_torchzoo = ("torchzoo.serve_cli", "torchzoo.core")
    root = Path(__file__).resolve().parents[1] / "src" / "torchzoo" / "serve_cli" / "server"
    offenders = []
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            for name in names:
                if name.startswith("torchzoo."):
                    ok = name.startswith(allowed_torchzoo)
                else:
                    also = {"ray"} if path.name in RAY_MODULES else set()  # only the Ray Serve path names ray
                    if path.name == "grpc_service.py":  # only the gRPC service names the gRPC stack
                        also |= {"grpc", "google", "tritonclient"}
                    ok = name.split(".")[0] in allowed | also | sys.stdlib_module_names
                if not ok:
                    offenders.append(f"{path.name}: {name}")
    assert not offenders, offenders


def test_the_listening_socket_says_it_is_tcp() -> None:
    """asyncio turns Nagle off (TCP_NODELAY) only on sockets whose proto is TCP; without it every response
    of a keep-alive connection waits for the client's delayed ACK."""
    from torchzoo.serve_cli.server.run import bind

    sock = bind("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP and sock.getsockname()[1] > 0
    finally:
        sock.close()
