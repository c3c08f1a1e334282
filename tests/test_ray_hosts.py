"""``serve --ray`` and ``predict-batch --ray`` across hosts that share nothing (tests/netns_hosts.py: a head and two
worker hosts, each its own network and mount namespace; the workers do not see the test's temporary files, so
neither the artifact root nor the inputs). The commands run on the head, as a user's driver would.

- serve: one worker host has no copy of the artifact, the other a damaged copy at the same path; both serve
  the shipped bytes, with the runtime's outputs. A worker host killed under load loses no request that the
  client retries; Serve's status then shows both replicas running again, on the surviving host.
- predict-batch: the rows are byte for byte those of a local run, and a worker host killed mid-job leaves
  either those very rows or a one-line error naming the lost host and no output file.
"""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import netns_hosts
import numpy as np
import pytest
from netns_hosts import Host, Hosts
from test_ray_serve import MODEL, REPLICA, body_of, infer

from torchzoo.serve_cli import load

from serving import Server, stop
from support import ROOT, Zoo, cli_env, heldout_inputs, run_cli

pytestmark = pytest.mark.slow
BATCH_MODEL = "names"
NODE_IP = "x-torchzoo-node-ip"
PORT = 8000
WORKER_CPUS = 2
#: a client's retries while a host is being lost: Serve routes to its replica until the node is declared dead
HOST_LOSS_RETRIES = 100
CLI = (sys.executable, "-c", "from torchzoo.cli import main; main()")
#: Serve's HTTP ingresses, by the environment of every Ray process and command: its Python proxy, and HAProxy
#: forwarding each request to a replica's own HTTP server (stopped within 5 s, not Ray's default 120 s)
INGRESSES = {"proxy": {}, "haproxy": {"RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S": "5"}}


@pytest.fixture(scope="module")
def root(zoo: Zoo) -> Path:
    return zoo.exported(MODEL, BATCH_MODEL)


@pytest.fixture(scope="module")
def hosts(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosts]:
    """Head + two worker hosts; the session's temporary root (artifacts, inputs) hidden on the workers."""
    with netns_hosts.namespace_hosts(["head", "w1", "w2"], [tmp_path_factory.getbasetemp()]) as made:
        yield made


def _cluster(hosts: Hosts, env: dict[str, str] | None = None) -> Hosts:
    """Ray on every host, with ``env`` (None: whatever it runs with): started again everywhere when it runs with
    another, else on a worker host lost by an earlier test (it joins as a new node)."""
    if (env is not None and any(host.env != env for host in hosts.hosts)) or not netns_hosts.is_up(hosts.head):
        netns_hosts.start_ray(hosts, WORKER_CPUS, env)
        return hosts
    lost = [host for host in hosts.workers if not netns_hosts.is_up(host)]
    for host in lost:
        netns_hosts.start_worker(hosts, host, WORKER_CPUS)
    if lost:
        netns_hosts.wait_for_nodes(hosts, len(hosts.hosts))
    return hosts


def _on_head(hosts: Hosts, *args: str, log: Path) -> subprocess.Popen:
    """``torchzoo ARGS`` on the head host, with the session's data root and the cluster's Ray settings."""
    cli = {k: v for k, v in cli_env().items() if not k.startswith("RAY_")}
    with open(log, "wb") as err:
        return hosts.head.popen(
            *CLI, *args, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, env=netns_hosts.ray_env(**cli, **hosts.head.env)
        )


def _serving(hosts: Hosts, root: Path, log: Path) -> Server:
    args = ("serve", MODEL, "--ray", "--replicas", "2", "--replica-cpus", "1", "--address", hosts.address)
    args += ("--host", "0.0.0.0", "--port", str(PORT), "--artifacts-dir", str(root), "--json")
    process = _on_head(hosts, *args, log=log)
    server = Server(f"http://{hosts.head.address}:{PORT}", process, log)
    deadline = time.monotonic() + 240
    while True:
        if process.poll() is not None:
            said = process.stdout.read().decode() if process.stdout else ""  # --json: the error is on stdout
            raise AssertionError(f"serve --ray exited {process.returncode}: {said} {log.read_text()[-3000:]}")
        try:
            if server.request("/v2/health/ready")[0] == 200:
                return server
        except OSError:
            pass
        assert time.monotonic() < deadline, f"serve --ray not ready after 240 s: {log.read_text()[-3000:]}"
        time.sleep(0.5)


STATUS = """
import json, sys, ray
from ray import serve
ray.init(address=sys.argv[1], logging_level="ERROR")
app = serve.status().applications["torchzoo"]
print(json.dumps({"app": str(app.status), "replicas": dict(app.deployments["torchzoo"].replica_states)}))
"""


def _serve_status(hosts: Hosts) -> dict:
    """Serve's own status of the app, asked on the head: the app's state and its replicas by state."""
    out = hosts.head.run(sys.executable, "-c", STATUS, hosts.address, timeout=120)
    return json.loads(out.strip().splitlines()[-1])


def _damage(host: Host, artifact: Path) -> None:
    """A stale, damaged copy of the artifact at the same path, on ``host`` only: one flipped byte in the graph."""
    graph = bytearray((artifact / "model.onnx").read_bytes())
    graph[len(graph) // 2] ^= 0xFF
    host.write(artifact / "manifest.json", (artifact / "manifest.json").read_bytes())
    host.write(artifact / "model.onnx", bytes(graph))


def _absent(host: Host, path: Path) -> bool:
    return host.run("sh", "-c", 'test -e "$1" && echo present || echo absent', "-", str(path)).strip() == "absent"


@pytest.mark.parametrize("ingress", list(INGRESSES))
def test_serve_ships_the_artifact_to_hosts_without_it_and_survives_a_lost_host(
    hosts: Hosts, root: Path, tmp_path: Path, ingress: str
) -> None:
    cluster = _cluster(hosts, INGRESSES[ingress])
    w1, w2 = cluster.workers
    artifact = root / MODEL
    assert _absent(w1, artifact)
    _damage(w2, artifact)
    images = heldout_inputs(root, MODEL)[0][:32]
    expected = load(artifact).run([images])[0]
    server = _serving(cluster, root, tmp_path / "serve.log")
    try:
        # both worker hosts serve the shipped bytes, with the runtime's outputs
        nodes: Counter[str] = Counter()
        replicas: dict[str, str] = {}
        deadline = time.monotonic() + 60
        i = 0
        while len(nodes) < 2 and time.monotonic() < deadline:
            logits, headers, _ = infer(server, body_of(images[i % len(images)]))
            np.testing.assert_allclose(logits, expected[i % len(images)], rtol=0, atol=1e-6)
            nodes[headers[NODE_IP]] += 1
            replicas[headers[REPLICA]] = headers[NODE_IP]
            i += 1
        assert set(nodes) == {w1.address, w2.address}, nodes
        assert _absent(w1, artifact)  # still nothing there: the replica loaded what was shipped

        # w2 is lost under load: every request is answered, with its right output, by a client that retries
        total, answered = 300, threading.Semaphore(0)

        def one(i: int) -> tuple[str, str, int]:
            logits, headers, failed = infer(server, body_of(images[i % len(images)]), retries=HOST_LOSS_RETRIES)
            np.testing.assert_allclose(logits, expected[i % len(images)], rtol=0, atol=1e-6)
            answered.release()
            return headers[NODE_IP], headers[REPLICA], failed

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(one, i) for i in range(total)]
            for _ in range(40):
                assert answered.acquire(timeout=60)
            killed, lost_at = w2.kill(), time.monotonic()
            results = [f.result(timeout=300) for f in futures]
        retried = sum(failed for _, _, failed in results)
        print(f"{ingress}: {total} answered after killing {len(killed)} processes of {w2.name}; {retried} retried")
        assert len(results) == total and max(failed for *_, failed in results) < HOST_LOSS_RETRIES

        # Serve replaces the lost replica on the surviving host: two replicas answer from w1, one of them new,
        # and Serve's status shows the app running with 2 replicas RUNNING
        after: dict[str, str] = {}
        deadline = time.monotonic() + 180
        while len(after) < 2 and time.monotonic() < deadline:
            _, headers, _ = infer(server, body_of(images[0]), retries=HOST_LOSS_RETRIES)
            after[headers[REPLICA]] = headers[NODE_IP]
        print(f"{ingress}: a new replica answered {time.monotonic() - lost_at:.0f} s after the host was lost")
        assert set(after.values()) == {w1.address}, after
        assert len(after) == 2 and set(after) - set(replicas), (after, replicas)
        while (status := _serve_status(cluster))["replicas"].get("RUNNING") != 2 and time.monotonic() < deadline:
            time.sleep(1)
        assert status["replicas"] == {"RUNNING": 2} and status["app"].endswith("RUNNING"), status
    finally:
        stop(server.process, grace=60)
    assert server.process.returncode == 0, server.log.read_text()[-3000:]
    summary = json.loads(server.process.stdout.read().decode().strip().splitlines()[0])
    assert summary["ray"]["replicas_running"] == 2 and summary["ray"]["nodes"] == 3


def _names(path: Path, count: int) -> Path:
    path.write_text("\n".join(["Rossi", "Nakamura", "", "R0ssi", "Dvořák"][i % 5] for i in range(count)) + "\n")
    return path


def test_predict_batch_across_hosts_writes_the_local_rows_through_a_lost_host(
    hosts: Hosts, root: Path, tmp_path: Path
) -> None:
    cluster = _cluster(hosts)
    w1, w2 = cluster.workers
    source = _names(tmp_path / "names.txt", 20_000)
    assert _absent(w1, source) and _absent(w2, root / BATCH_MODEL)
    local = tmp_path / "local.jsonl"
    result = run_cli("predict-batch", BATCH_MODEL, str(source), "--output", str(local), "--artifacts-dir", str(root))
    assert result.returncode == 1, result.stderr  # the empty and the digit lines are error rows

    def on_hosts(output: Path, log: Path) -> subprocess.Popen:
        args = ("predict-batch", BATCH_MODEL, str(source), "--output", str(output), "--artifacts-dir", str(root))
        args += ("--ray", "--address", cluster.address, "--actors", "2", "--batch-size", "50", "--json")
        return _on_head(cluster, *args, log=log)

    # every host up: the rows of the local run, from actors on both worker hosts
    whole = tmp_path / "whole.jsonl"
    job = on_hosts(whole, tmp_path / "whole.log")
    assert job.wait(timeout=300) == 1, (tmp_path / "whole.log").read_text()[-3000:]
    assert whole.read_bytes() == local.read_bytes()
    actors = json.loads(job.stdout.read())["ray_actors"]
    assert {a.split(":")[0] for a in actors} == {w1.address, w2.address}, actors

    # w2 lost mid-job: the very same rows (Ray Data restarts the actor and retries its batches), or one line
    # naming the lost host and no file; never a short file
    lost = tmp_path / "lost.jsonl"
    log = tmp_path / "lost.log"
    job = on_hosts(lost, log)
    deadline = time.monotonic() + 240
    while not any(p.stat().st_size > 0 for p in tmp_path.glob(".lost.jsonl.*.part")):
        assert job.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.05)
    w2.kill()
    code = job.wait(timeout=600)
    errors = [line for line in log.read_text().splitlines() if line.startswith("torchzoo: error:")]
    print(f"predict-batch with {w2.name} lost mid-job: exit {code}, {errors or 'no error'}")
    if code == 1 and lost.exists():
        assert lost.read_bytes() == local.read_bytes()
    else:
        assert code == 1 and not lost.exists() and len(errors) == 1 and w2.address in errors[0], log.read_text()
    assert not list(tmp_path.glob(".lost.jsonl.*"))
