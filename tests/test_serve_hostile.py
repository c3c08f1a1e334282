"""``torchzoo serve`` treats every request as hostile, by class: a v1 instance is a value and never a path on
the server; one client's rows never fail another's request; every client error is a 4xx with ``{"error"}``
(never a 500, in the answer, ``/metrics`` or the access log); request heads are bounded while they arrive;
images are decoded off the event loop, within a stated pixel cap; compressed bodies are inflated within the
body limit."""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import gzip
import io
import json
import re
import socket
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as triton
from PIL import Image

from torchzoo.serve_cli import load
from torchzoo.serve_cli.server.heads import MAX_HEAD_BYTES, MAX_URL_BYTES
from torchzoo.serve_cli.server.v1 import MAX_DECODED_PIXELS

from serving import Server, serving
from support import Zoo

MODELS = ("names", "wine", "mnist-mlp")
WINE_ROW = [13.2, 1.78, 2.14, 11.2, 100, 2.65, 2.76, 0.26, 1.28, 4.38, 1.05, 3.4, 1050]
#: finite float32 pixels that overflow mnist-mlp's first layer to infinity
POISON = 3e38


@pytest.fixture(scope="module")
def root(zoo: Zoo) -> Path:
    return zoo.exported(*MODELS)


@pytest.fixture(scope="module")
def server(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Server:
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with serving(root, *MODELS, "--max-delay-ms", "5", log=log) as running:
        yield running


def _wine(data: object, **extra: object) -> dict:
    return {"inputs": [{"name": "features", "shape": [1, 13], "datatype": "FP32", "data": data}], **extra}


def _image_tensor(pixels: np.ndarray) -> dict:
    return {"name": "image", "shape": [1, 1, 28, 28], "datatype": "FP32", "data": pixels.ravel().tolist()}


def _refused(status: int, content: bytes, says: str = "") -> str:
    """A 4xx whose body is exactly ``{"error": one line}``; returns the line."""
    assert 400 <= status < 500, (status, content[:300])
    body = json.loads(content)
    assert list(body) == ["error"] and "\n" not in body["error"] and says in body["error"], body
    return body["error"]


def _no_server_errors(server: Server) -> None:
    """No 500 in /metrics, none in the access log (written every 0.2 s), no traceback in the server's log."""
    metrics = server.request("/metrics")[2].decode()
    assert not re.search(r'torchzoo_requests_total\{[^}]*status="5\d\d"', metrics), metrics
    time.sleep(0.5)
    text = server.log.read_text()
    assert "Traceback" not in text
    statuses = [json.loads(line)["status"] for line in text.splitlines() if line.startswith("{")]
    assert statuses and all(s < 500 for s in statuses), sorted(set(statuses))


# --- a v1 instance is never a path on the server ----------------------------------------------------------


def test_a_v1_string_is_a_value_never_a_path(server: Server, tmp_path: Path) -> None:
    """A features model reads rows of numbers only: a string naming a file that exists on the server, one that
    does not, and a comma-separated row all get the same refusal, which shows nothing of any file."""
    rows = tmp_path / "rows.csv"
    rows.write_text(",".join(map(str, WINE_ROW)) + "\n")
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET,1,2\n")
    answers = set()
    for instance in (str(rows), str(secret), str(tmp_path / "missing.csv"), "/etc/passwd", "13.2,1.78"):
        status, _, content = server.request("/v1/models/wine:predict", {"instances": [instance]})
        answers.add(_refused(status, content, "instances[0]: a row of 13 numbers"))
    assert answers == {"instances[0]: a row of 13 numbers"}
    for instance in ({"b64": "eA=="}, ["x"] * 13, [None] * 13, [True] * 13, [[1]] * 13, WINE_ROW[:12]):
        status, _, content = server.request("/v1/models/wine:predict", {"instances": [WINE_ROW, instance]})
        _refused(status, content, "instances[1]")
    status, _, content = server.request("/v1/models/mnist-mlp:predict", {"instances": [str(secret)]})
    assert "TOPSECRET" not in _refused(status, content, "instances[0]")
    status, _, content = server.request("/v1/models/names:predict", {"instances": ["Rossi", 5]})
    _refused(status, content, "instances[1]: this model takes names")


def test_v1_rows_are_answered_as_the_runtime_answers_them(server: Server, root: Path) -> None:
    status, body = server.json("/v1/models/wine:predict", {"instances": [WINE_ROW]})
    assert status == 200 and body["predictions"] == load(root / "wine").predict([WINE_ROW])


# --- one client's rows never fail another client's request -------------------------------------------------


def test_a_poisoned_request_fails_alone_among_100_concurrent_good_ones(root: Path, tmp_path: Path) -> None:
    predictor = load(root / "mnist-mlp")
    images = list(np.random.default_rng(0).standard_normal((101, 1, 1, 28, 28)).astype(np.float32))
    images[50] = np.full((1, 1, 28, 28), POISON, np.float32)
    with serving(root, "mnist-mlp", "--max-delay-ms", "50", log=tmp_path / "log") as server:
        status, _, content = server.request("/v2/models/mnist-mlp/infer", {"inputs": [_image_tensor(images[50])]})
        alone = _refused(status, content, "not an answer")  # the output overflows: refused on its own too

        def one(pixels: np.ndarray) -> tuple[int, bytes]:
            status, _, content = server.request("/v2/models/mnist-mlp/infer", {"inputs": [_image_tensor(pixels)]})
            return status, content

        with concurrent.futures.ThreadPoolExecutor(101) as pool:
            answers = list(pool.map(one, images))
        metrics = server.request("/metrics")[2].decode()
    assert _refused(*answers[50]) == alone
    for i, (status, content) in enumerate(answers):
        if i != 50:
            assert status == 200, (i, content)
            got = np.asarray(json.loads(content)["outputs"][0]["data"], np.float32)
            np.testing.assert_allclose(got, predictor.run([images[i]])[0][0], rtol=0, atol=1e-6)
    runs = float(re.search(r'torchzoo_batch_size_count\{model="mnist-mlp"\} (\S+)', metrics).group(1))
    single = float(re.search(r'torchzoo_batch_size_bucket\{le="1.0",model="mnist-mlp"\} (\S+)', metrics).group(1))
    assert single < runs  # requests did share runs


# --- every client error is a 4xx, never a 500 --------------------------------------------------------------

#: a good wine input, for bodies written as bytes
WINE_INPUTS = b'"inputs": [{"name": "features", "shape": [1, 13], "datatype": "FP32", "data": [' + b"1, " * 12 + b"1]}]"
DIGITS = "9" * 5000  # past Python's int-digit limit (4300)
HUGE = str(10**400)  # an integer within the limit, past float range
BAD_BODIES = [
    ("wine", _wine([1e400] * 13), None),  # JSON that only Python's json reads (infinity)
    (
        "wine",
        b'{"inputs": [{"name": "features", "shape": [1, 13], "datatype": "FP32", "data": [1e400'
        + b", 1" * 12
        + b"]}]}",
        "NaN or infinite",
    ),
    (
        "wine",
        (
            '{"inputs": [{"name": "features", "shape": [1, 13], "datatype": "FP32", "data": ['
            + DIGITS
            + ", 1" * 12
            + "]}]}"
        ).encode(),
        "not valid JSON",
    ),
    (
        "wine",
        (
            '{"inputs": [{"name": "features", "shape": [1, 13], "datatype": "FP32", "data": ['
            + HUGE
            + ", 1" * 12
            + "]}]}"
        ).encode(),
        "must be numbers",
    ),
    (
        "wine",
        ('{"inputs": [{"name": "features", "shape": [' + DIGITS + ', 13], "datatype": "FP32", "data": [1]}]}').encode(),
        "not valid JSON",
    ),
    ("wine", _wine([True] * 13), "must be numbers"),
    ("wine", _wine(["1"] * 13), "must be numbers"),
    ("wine", _wine([[1, 2]] * 13), "26 values"),
    ("wine", _wine({"a": 1}), "must be numbers"),
    (
        "wine",
        b'{"id": "\\ud800", ' + WINE_INPUTS + b"}",
        "'id'",
    ),
    ("wine", b'{"inputs": [{"name": "\\udc00", "shape": [1, 13], "datatype": "FP32", "data": [1]}]}', "unknown input"),
    (
        "wine",
        b"{" + WINE_INPUTS + b', "outputs": [{"name": "\\ud800x"}]}',
        "unknown output",
    ),
    ("wine", _wine([1] * 13, outputs=[{"name": "logits", "parameters": {"classification": 2}}]), "classification"),
    (
        "wine",
        {
            "inputs": [
                {"name": "features", "shape": [1, 13], "datatype": "FP32", "parameters": {"binary_data_size": True}}
            ]
        },
        "binary_data_size",
    ),
    (
        "wine",
        {
            "inputs": [
                {
                    "name": "features",
                    "shape": [1, 13],
                    "datatype": "FP32",
                    "data": [1] * 13,
                    "parameters": {"binary_data_size": 52},
                }
            ]
        },
        "binary",
    ),
    ("wine", b"[" * 100_000, None),
    ("names", {"instances": ["\ud800"]}, None),
    ("names", b'{"instances": ["Ross\\udfffi"]}', None),
    ("wine", {"instances": [[1e300] * 13]}, "beyond the range"),
    ("wine", ('{"instances": [[' + HUGE + ", 1" * 12 + "]]}").encode(), "within float range"),
    ("wine", b'{"instances": [[1e400' + b", 1" * 12 + b"]]}", "finite"),
    (
        "wine",
        ('{"instances": [[1' + ", 1" * 12 + ']], "parameters": {"top_k": ' + DIGITS + "}}").encode(),
        "not valid JSON",
    ),
    ("wine", {"instances": [WINE_ROW], "parameters": {"top_k": True}}, "top_k"),
    ("wine", {"instances": [WINE_ROW], "parameters": {"threshold": "0.5"}}, "threshold"),
    ("wine", {"instances": [WINE_ROW], "parameters": {"threshold": False}}, "threshold"),
    ("mnist-mlp", {"instances": [{"b64": 5}]}, "instances[0]"),
    ("mnist-mlp", {"instances": [["b64"]]}, "instances[0]"),
]


def _path(model: str, body: object) -> str:
    v1 = b'"instances"' in (body if isinstance(body, bytes) else json.dumps(body).encode())
    return f"/v1/models/{model}:predict" if v1 else f"/v2/models/{model}/infer"


@pytest.mark.parametrize(("model", "body", "says"), BAD_BODIES)
def test_a_client_error_is_a_4xx_with_one_line(server: Server, model: str, body: object, says: str | None) -> None:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, _, content = server.request(_path(model, body), data)
    _refused(status, content, says or "")


#: every JSON type, for a ``parameters`` at each level where the protocol has one
ANY_JSON = [None, True, 0, -1.5, "x", "\ud800", [], [1, {"a": []}], {}, {"binary_data": [1], "binary_data_output": {}}]


@pytest.mark.parametrize("value", ANY_JSON, ids=repr)
def test_parameters_of_any_json_type_at_any_level_are_never_a_500(server: Server, value: object) -> None:
    tensor = {"name": "features", "shape": [1, 13], "datatype": "FP32", "data": WINE_ROW, "parameters": value}
    bodies = [
        _wine(WINE_ROW, parameters=value),
        {"inputs": [tensor]},
        _wine(WINE_ROW, outputs=[{"name": "logits", "parameters": value}]),
        {"instances": [WINE_ROW], "parameters": value},
    ]
    for body in bodies:
        status, _, content = server.request(_path("wine", body), json.dumps(body).encode())
        assert status == 200 or _refused(status, content), (body, status, content)


def test_a_client_that_leaves_or_breaks_the_framing_is_no_server_error(server: Server) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    head = "POST /v2/models/wine/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    with socket.create_connection((host, int(port)), timeout=30) as sock:  # leaves after 10 of 1,000 bytes
        sock.sendall((head + "Content-Length: 1000\r\n\r\n" + "{" * 10).encode())
        time.sleep(0.3)
    with socket.create_connection((host, int(port)), timeout=30) as sock:  # a chunk size that is no number
        sock.sendall((head + 'Transfer-Encoding: chunked\r\n\r\n5\r\n{"inp\r\nzz\r\n').encode())
        assert _read_answer(sock)[0] == 400
    with socket.create_connection((host, int(port)), timeout=30) as sock:  # chunked, then the end of the stream
        sock.sendall((head + 'Transfer-Encoding: chunked\r\n\r\n5\r\n{"inp\r\n').encode())
        sock.shutdown(socket.SHUT_WR)
        time.sleep(0.3)
    assert server.request("/v2/health/ready")[0] == 200
    for _, body, _ in BAD_BODIES[:3]:  # and the refusals above, once more, for the count
        server.request(_path("wine", body), body if isinstance(body, bytes) else json.dumps(body).encode())
    _no_server_errors(server)


# --- bounded request heads ------------------------------------------------------------------------------


def _read_answer(sock: socket.socket) -> tuple[int, dict]:
    """Status and JSON body of an answer on a raw socket (the server closes after it, or sends its length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"content-length: (\d+)", head, re.IGNORECASE).group(1))
    while len(rest) < length:
        rest += sock.recv(65536)
    return int(head.split()[1]), json.loads(rest[:length])


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * (MAX_HEAD_BYTES + 10), 431),
        (b"GET /v2/health/live HTTP/1.1\r\n" + b"X-Pad: a\r\n" * (MAX_HEAD_BYTES // 10 + 10), 431),
        (b"GET /v2/" + b"a" * (MAX_URL_BYTES + 10), 414),
    ],
    ids=["one-long-header", "many-headers", "long-url"],
)
def test_request_heads_are_bounded_while_they_arrive(server: Server, head: bytes, status: int) -> None:
    """The head is never finished (no blank line): the refusal comes while it is still arriving."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head)  # refused and closed while sending: the answer is still there to read
        got, body = _read_answer(sock)
    assert got == status and "over" in body["error"], body
    assert server.request("/v2/health/live")[0] == 200


def test_a_head_within_the_limits_with_a_large_body_in_one_write_is_served(server: Server, root: Path) -> None:
    images = np.random.default_rng(1).standard_normal((300, 1, 28, 28)).astype(np.float32)  # 940 kB
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "image",
                    "shape": list(images.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": images.nbytes},
                }
            ],
            "outputs": [{"name": "logits", "parameters": {"binary_data": True}}],
        }
    ).encode()
    body = header + images.tobytes()
    pad = "".join(f"X-Pad-{i}: {'a' * 100}\r\n" for i in range(MAX_HEAD_BYTES // 200))  # half the head limit
    head = (
        f"POST /v2/models/mnist-mlp/infer HTTP/1.1\r\nHost: x\r\n{pad}Inference-Header-Content-Length: {len(header)}"
        f"\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head + body)
        data = b""
        while chunk := sock.recv(1 << 20):
            data += chunk
    answer_head, _, answer = data.partition(b"\r\n\r\n")
    assert answer_head.split()[1] == b"200", answer_head
    length = int(re.search(rb"inference-header-content-length: (\d+)", answer_head).group(1))
    got = np.frombuffer(answer[length:], np.float32).reshape(300, -1)
    np.testing.assert_allclose(got, load(root / "mnist-mlp").run([images])[0], rtol=0, atol=1e-6)


# --- nothing heavy on the event loop --------------------------------------------------------------------

#: a server in which decoding an image on the event loop's thread fails the request
DECODE_OFF_THE_LOOP = """
import asyncio
from torchzoo.serve_cli.server import v1

_decode = v1.decode_image


def decode_image(*args, **kwargs):
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _decode(*args, **kwargs)
    raise RuntimeError("an image was decoded on the event loop")


v1.decode_image = decode_image
"""


def _png(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_v1_images_are_decoded_off_the_event_loop_within_the_pixel_cap(root: Path, tmp_path: Path) -> None:
    digit = np.random.default_rng(2).integers(0, 256, (28, 28), dtype=np.uint8)
    side = int(MAX_DECODED_PIXELS**0.5) + 1
    big = _png(np.zeros((side, side), np.uint8))  # a few kB of PNG, just over the cap once decoded
    with serving(root, "mnist-mlp", prelude=DECODE_OFF_THE_LOOP, log=tmp_path / "log") as server:
        status, body = server.json("/v1/models/mnist-mlp:predict", {"instances": [{"b64": _png(digit)}]})
        assert status == 200 and body["predictions"] == load(root / "mnist-mlp").predict([digit[None, None]])
        status, _, content = server.request("/v1/models/mnist-mlp:predict", {"instances": [_png(digit), big]})
        _refused(status, content, f"instances[1] decodes to {side}x{side}; at most {MAX_DECODED_PIXELS:,} pixels")


# --- compressed requests --------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_tritonclient_compressed_requests_are_inflated(server: Server, root: Path, algorithm: str) -> None:
    client = triton.InferenceServerClient(server.url.removeprefix("http://"), network_timeout=30)
    images = np.random.default_rng(3).standard_normal((4, 1, 28, 28)).astype(np.float32)
    for binary in (True, False):
        tensor = triton.InferInput("image", list(images.shape), "FP32")
        tensor.set_data_from_numpy(images, binary_data=binary)
        result = client.infer("mnist-mlp", [tensor], request_compression_algorithm=algorithm)
        np.testing.assert_allclose(result.as_numpy("logits"), load(root / "mnist-mlp").run([images])[0], atol=1e-6)


def test_compressed_bodies_are_held_to_the_limit_once_inflated(server: Server) -> None:
    body = json.dumps(_wine(WINE_ROW)).encode()
    raw_deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    for encoded, encoding in (
        (zlib.compress(body), "deflate"),
        (raw_deflate.compress(body) + raw_deflate.flush(), "deflate"),
        (gzip.compress(body), "gzip"),
    ):
        assert server.request("/v2/models/wine/infer", encoded, {"Content-Encoding": encoding})[0] == 200
    bomb = gzip.compress(b" " * (64 << 20))  # 64 MiB of spaces in 64 kB
    status, _, content = server.request("/v2/models/wine/infer", bomb, {"Content-Encoding": "gzip"})
    _refused(status, content, "inflated request body over 8,388,608 bytes")
    status, _, content = server.request("/v2/models/wine/infer", body, {"Content-Encoding": "br"})
    assert status == 415 and "'br'" in _refused(status, content)
    status, _, content = server.request("/v2/models/wine/infer", body, {"Content-Encoding": "gzip"})
    _refused(status, content, "not valid gzip")
    status, _, content = server.request("/v2/models/wine/infer", gzip.compress(body)[:-9], {"Content-Encoding": "gzip"})
    _refused(status, content, "truncated")
    status, _, content = server.request(
        "/v1/models/wine:predict",
        gzip.compress(json.dumps({"instances": [WINE_ROW]}).encode()),
        {"Content-Encoding": "gzip"},
    )
    assert status == 200, content
