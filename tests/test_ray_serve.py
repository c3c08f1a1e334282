"""``torchzoo serve --ray`` on a real two-node Ray cluster (``ray.cluster_utils.Cluster``, both nodes on this
machine): the CLI deploys two replicas, one per node; the Open Inference Protocol answers as ``torchzoo
serve`` does (outputs equal the runtime's), from both nodes (the response headers say which); a replica
killed mid-load loses no request that the client retries, and Serve starts a new one; SIGTERM removes the
app. Bad options are one line, exit 2."""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as triton

from torchzoo.serve_cli import load

from serving import Server, free_port, serving
from support import ROOT, Zoo, heldout_inputs, run_cli

MODEL = "mnist-mlp"
NODE, REPLICA = "x-torchzoo-node", "x-torchzoo-replica"
RETRIES = 5
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def root(zoo: Zoo) -> Path:
    return zoo.exported(MODEL)


@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    """A head node and a second node, one CPU each; this process is connected to it (to kill a replica)."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, connect=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes(timeout=60)
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.fixture(scope="module")
def server(root: Path, cluster: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("ray-serve") / "serve.log"
    args = ("--ray", "--replicas", "2", "--replica-cpus", "0.5", "--address", cluster.address, "--json")
    with serving(root, MODEL, *args, log=log, timeout=180) as running:
        yield running


def _images(root: Path) -> np.ndarray:
    """Real held-out MNIST images, saved in the artifact by export."""
    return heldout_inputs(root, MODEL)[0]


def body_of(image: np.ndarray) -> bytes:
    """An Open Inference Protocol JSON request for one image."""
    tensor = {"name": "image", "shape": [1, *image.shape], "datatype": "FP32", "data": image.ravel().tolist()}
    return json.dumps({"inputs": [tensor]}).encode()


def infer(server: Server, body: bytes, retries: int = RETRIES) -> tuple[np.ndarray, dict[str, str], int]:
    """One request, retried (up to ``retries`` more times) when the server fails it (5xx) or the connection
    breaks, as a client of a replicated service does; a refusal (4xx) fails at once. Returns the logits,
    the response headers and how many attempts failed."""
    failed = 0
    while True:
        request = urllib.request.Request(f"{server.url}/v2/models/{MODEL}/infer", data=body, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                answer = json.loads(response.read())
                return np.asarray(answer["outputs"][0]["data"], np.float32), dict(response.headers), failed
        except urllib.error.HTTPError as exc:
            if exc.code < 500 or failed == retries:
                raise
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError):
            if failed == retries:
                raise
        failed += 1
        time.sleep(0.2)


def _node_ids(cluster: object) -> set[str]:
    return {node.node_id for node in cluster.list_all_nodes()}


def test_outputs_equal_the_runtime_and_both_nodes_answer(server: Server, root: Path, cluster: object) -> None:
    predictor = load(root / MODEL)
    images = _images(root)
    client = triton.InferenceServerClient(server.url.removeprefix("http://"), network_timeout=30)
    assert client.is_server_ready() and client.is_model_ready(MODEL)
    batch = images[:8]
    tensor = triton.InferInput("image", list(batch.shape), "FP32")
    tensor.set_data_from_numpy(batch, binary_data=True)
    got = client.infer(MODEL, [tensor]).as_numpy("logits")
    np.testing.assert_allclose(got, predictor.run([batch])[0], rtol=0, atol=1e-6)

    nodes: Counter[str] = Counter()
    replicas: set[str] = set()
    deadline = time.monotonic() + 60
    i = 0
    while len(nodes) < 2 and time.monotonic() < deadline:
        image = images[i % len(images)]
        logits, headers, _ = infer(server, body_of(image))
        np.testing.assert_allclose(logits, predictor.run([image[None]])[0][0], rtol=0, atol=1e-6)
        nodes[headers[NODE]] += 1
        replicas.add(headers[REPLICA])
        i += 1
    assert set(nodes) == _node_ids(cluster), nodes  # both nodes of the cluster answered
    assert len(replicas) == 2


def test_a_replica_killed_mid_load_loses_no_retried_request(server: Server, root: Path) -> None:
    import ray
    from ray import serve

    predictor = load(root / MODEL)
    images = _images(root)[:32]
    expected = predictor.run([images])[0]
    total, answered = 240, threading.Semaphore(0)
    before: set[str] = set()
    while len(before) < 2:  # the two replicas' ids, from the headers
        before.add(infer(server, body_of(images[0]))[1][REPLICA])

    def one(i: int) -> tuple[str, int]:
        logits, headers, failed = infer(server, body_of(images[i % len(images)]))
        np.testing.assert_allclose(logits, expected[i % len(images)], rtol=0, atol=1e-6)
        answered.release()
        return headers[REPLICA], failed

    victim = sorted(before)[0]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(one, i) for i in range(total)]
        for _ in range(40):  # mid-load: 40 answered, 200 still to come
            assert answered.acquire(timeout=60)
        ray.kill(ray.get_actor(f"SERVE_REPLICA::torchzoo#torchzoo#{victim}", namespace="serve"))
        results = [f.result(timeout=120) for f in futures]
    failed_attempts = sum(failed for _, failed in results)
    by_replica = Counter(replica for replica, _ in results)
    print(f"{total} requests answered, {failed_attempts} failed attempts retried, by replica: {dict(by_replica)}")
    assert len(results) == total  # every request answered (with its right output), none lost
    assert max(failed for _, failed in results) < RETRIES, failed_attempts

    # Serve notices the dead replica and starts another: a new replica id answers, the killed one never again
    deadline = time.monotonic() + 120
    seen: set[str] = set()
    while not (seen - before) and time.monotonic() < deadline:
        seen.add(infer(server, body_of(images[0]))[1][REPLICA])
        time.sleep(0.05)
    assert seen - before, f"no new replica answered within 120 s (answered by {seen})"
    while time.monotonic() < deadline:
        states = serve.status().applications["torchzoo"].deployments["torchzoo"].replica_states
        if states.get("RUNNING") == 2:
            break
        time.sleep(0.5)
    assert states.get("RUNNING") == 2, states
    after = {infer(server, body_of(images[0]))[1][REPLICA] for _ in range(20)}
    assert victim not in after


def test_sigterm_shuts_serve_down_and_exits_0(server: Server) -> None:
    """The app was the cluster's only one: its replicas, the proxy and Serve's controller are all gone."""
    import ray

    port = int(server.url.rsplit(":", 1)[1])
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=60) == 0, server.log.read_text()[-2000:]
    deadline = time.monotonic() + 30
    while (
        left := [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)]
    ) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, left
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=5):
        pass  # Serve shut down with the app: its proxy no longer listens
    summary = json.loads(server.process.stdout.read().decode().strip().splitlines()[0])
    assert summary["ray"]["replicas_running"] == 2 and summary["ray"]["nodes"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ray", "--replicas", "2", "--autoscale", "1:2"], "--replicas and --autoscale exclude each other"),
        (["--ray", "--autoscale", "3:1"], "MIN (3) is larger than MAX (1)"),
        (["--ray", "--autoscale", "two"], "expected MIN:MAX"),
        (["--replicas", "2"], "--replicas is only used with --ray"),
        (["--address", "auto"], "--address is only used with --ray"),
    ],
)
def test_bad_options_are_one_line_exit_2(args: list[str], message: str) -> None:
    result = run_cli("serve", MODEL, *args, timeout=60)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_no_ray_installed_is_one_line_exit_2() -> None:
    hide_ray = "import sys; sys.modules['ray'] = None\nfrom torchzoo.cli import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", hide_ray, "serve", MODEL, "--ray"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "--ray needs Ray Serve" in result.stderr, result.stderr
    assert "torchzoo[ray" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_an_address_nothing_answers_at_is_one_line_exit_2(root: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    result = run_cli("serve", MODEL, "--ray", "--address", address, "--artifacts-dir", str(root), timeout=60)
    assert result.returncode == 2 and f"--address {address}: no Ray cluster answers there" in result.stderr
    assert "Traceback" not in result.stderr


def test_plain_serve_does_not_import_ray() -> None:
    code = (
        "import sys, torchzoo.cli.serve, torchzoo.serve_cli.server.run, torchzoo.serve_cli.server.app\n"
        "assert not [m for m in sys.modules if m == 'ray' or m.startswith('ray.')], 'ray imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
