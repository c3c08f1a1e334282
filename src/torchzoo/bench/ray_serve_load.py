"""``torchzoo bench --scale-out``: requests/s of ``torchzoo serve --ray`` at 64 connections (``wrk``, with the
bodies and parser of ``bench --serve``) for cifar10-cnn and mnist-lstm, 1 replica against 2 replicas on a
local two-node Ray cluster (``ray.cluster_utils.Cluster``, one CPU per node, one replica per node), beside
plain ``torchzoo serve`` (uvicorn, no Ray) in the same run. Rounds alternate the three servers; every
request is counted (answered, refused, lost) and the load average is recorded around each run, since the
machine is shared. With ``results["batch"]``: the predict-batch throughput (``bench.batch_throughput``)
when that module exists."""

from __future__ import annotations

import importlib.util
import json
import os
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from torchzoo.bench.serve_load import Running, free_port, request_bodies, torchzoo_server, wrk
from torchzoo.core import artifact
from torchzoo.core.errors import UserInputError

MODELS = ("cifar10-cnn", "mnist-lstm")
CONNECTIONS = 64
REPLICAS = (1, 2)
START_SECONDS = 240
SAMPLED_REQUESTS = 20


class RayServer(Running):
    """``torchzoo serve MODELS --ray --replicas N --address CLUSTER``, ready once its ``--json`` summary says
    every replica runs."""

    def __init__(self, root: Path, address: str, replicas: int, log: Path) -> None:
        port = free_port()
        command = [sys.executable, "-c", "from torchzoo.cli import main; main()", "serve", *MODELS, "--ray"]
        command += ["--replicas", str(replicas), "--address", address, "--replica-cpus", "1", "--provider", "cpu"]
        command += ["--artifacts-dir", str(root), "--port", str(port), "--json"]
        with open(log, "ab") as err:
            self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err)
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_SECONDS
        while not select.select([self.process.stdout], [], [], 1.0)[0]:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise UserInputError(f"torchzoo serve --ray did not start (see {log})")
        self.summary = json.loads(self.process.stdout.readline())

    def stop(self) -> None:
        super().stop()
        if self.process.stdout:
            self.process.stdout.close()


def _answering(url: str, model: str, body: Path) -> dict[str, int]:
    """Which replicas answer sequential requests (the x-torchzoo-replica header), and how often."""
    seen: Counter[str] = Counter()
    for _ in range(SAMPLED_REQUESTS):
        request = urllib.request.Request(f"{url}/v2/models/{model}/infer", data=body.read_bytes(), method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            seen[f"{response.headers['x-torchzoo-node'][:8]}/{response.headers['x-torchzoo-replica']}"] += 1
    return dict(seen)


def _measure(
    server: Running, label: str, replicas: int, models: tuple[str, ...], bodies: dict, seconds: float, work: Path
) -> list[dict]:
    """One wrk run per model and tensor kind, with the load average before and after."""
    rows = []
    for model in models:
        for kind, (body, header_length) in bodies[model].items():
            load_before = os.getloadavg()
            result = wrk(f"{server.url}/v2/models/{model}/infer", body, header_length, CONNECTIONS, seconds, work)
            rows.append(
                {
                    "server": label,
                    "replicas": replicas,
                    "model": model,
                    "tensors": kind,
                    "connections": CONNECTIONS,
                    **result,
                    "load_before": [round(x, 2) for x in load_before],
                    "load_after": [round(x, 2) for x in os.getloadavg()],
                }
            )
    return rows


def run(root: Path, seconds: float = 8.0, rounds: int = 2) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise UserInputError("the load test needs wrk: apt-get install -y wrk")
    if importlib.util.find_spec("ray") is None:
        raise UserInputError("bench --scale-out needs Ray Serve: pip install 'torchzoo[ray,cpu]'")
    missing = [m for m in MODELS if not (root / m / artifact.MANIFEST).is_file()]
    if missing:
        raise UserInputError(f"export {', '.join(missing)} first (torchzoo export NAME)")
    from ray.cluster_utils import Cluster

    rows: list[dict[str, Any]] = []
    samples: dict[str, dict[str, int]] = {}
    started = time.time()
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bodies = {}
        for model in MODELS:
            (work / model).mkdir()
            bodies[model] = request_bodies(root / model, work / model)
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
        try:
            cluster.add_node(num_cpus=1)
            cluster.wait_for_nodes(timeout=120)
            for r in range(rounds):
                for model in MODELS:  # plain torchzoo serve: one uvicorn process per model, as bench --serve
                    plain = torchzoo_server(root, model)
                    try:
                        measured = _measure(plain, "torchzoo serve", 0, (model,), bodies, seconds, work)
                        rows += [{**row, "round": r} for row in measured]
                    finally:
                        plain.stop()
                for replicas in REPLICAS:
                    server = RayServer(root, cluster.address, replicas, work / "serve.log")
                    try:
                        for model in MODELS:
                            samples[f"{replicas} replicas, {model}"] = _answering(
                                server.url, model, bodies[model]["json"][0]
                            )
                        measured = _measure(server, "torchzoo serve --ray", replicas, MODELS, bodies, seconds, work)
                        rows += [{**row, "round": r} for row in measured]
                    finally:
                        server.stop()
        finally:
            cluster.shutdown()
    lost = sum(row["lost"] for row in rows)
    return {
        "rows": rows,
        "summary": summarize(rows),
        "answering": samples,
        "lost": lost,
        "seconds_per_run": seconds,
        "rounds": rounds,
        "cpus": os.cpu_count(),
        "load_average_start": [round(x, 2) for x in load_start],
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "minutes": round((time.time() - started) / 60, 1),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
    }


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Median requests/s over the rounds per model and tensor kind: plain, 1 replica, 2 replicas, 2 vs 1."""
    out = []
    for model in MODELS:
        for kind in ("json", "binary"):

            def median(replicas: int, model: str = model, kind: str = kind) -> float | None:
                values = [
                    r["requests_per_s"]
                    for r in rows
                    if r["model"] == model and r["tensors"] == kind and r["replicas"] == replicas
                ]
                return statistics.median(values) if values else None

            plain, one, two = median(0), median(1), median(2)
            out.append(
                {
                    "model": model,
                    "tensors": kind,
                    "plain": plain,
                    "ray_1": one,
                    "ray_2": two,
                    "two_vs_one": (two / one) if one and two else None,
                }
            )
    return out


def with_batch(results: dict[str, Any], root: Path, quick: bool) -> dict[str, Any]:
    """Adds ``results["batch"]`` from ``torchzoo.bench.batch_throughput`` when that module exists."""
    if importlib.util.find_spec("torchzoo.bench.batch_throughput") is not None:
        from torchzoo.bench import batch_throughput

        results["batch"] = batch_throughput.run(root, quick)
    return results


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def render(results: dict[str, Any]) -> str:
    load = results["load_average_start"], results["load_average_end"]
    lines = [
        "# Scale-out: torchzoo serve --ray, 1 vs 2 replicas",
        "",
        f"`wrk -t1 -c{CONNECTIONS} -d{results['seconds_per_run']:g}s` on loopback against Serve's HTTP proxy "
        f"(head node); a local two-node Ray cluster (`ray.cluster_utils.Cluster`, 1 CPU per node, one replica "
        f"per node), {results['rounds']} rounds alternating the servers, medians below. Beside it, plain "
        "`torchzoo serve` (uvicorn, no Ray). Written by `torchzoo bench --scale-out` on "
        f"{results['date']} ({results['minutes']:g} min).",
        "",
        f"This machine has {results['cpus']} cores, shared with other agents' jobs: load average (1/5/15 min) "
        f"{'/'.join(f'{x:g}' for x in load[0])} at the start, {'/'.join(f'{x:g}' for x in load[1])} at the end "
        "(per run in the JSON). Both 'nodes' are processes on the same 2 cores, which also run wrk, Serve's "
        "proxy and controller: a second replica here cannot add a core, so 2 vs 1 measures what Serve's "
        "routing costs or gains, not what a second machine would add.",
        "",
        "| model | tensors | torchzoo serve req/s | --ray 1 replica req/s | --ray 2 replicas req/s | 2 vs 1 |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for s in results["summary"]:
        ratio = "-" if s["two_vs_one"] is None else f"{s['two_vs_one']:.2f}x"
        lines.append(
            f"| {s['model']} | {s['tensors']} | {_rate(s['plain'])} | {_rate(s['ray_1'])} | "
            f"{_rate(s['ray_2'])} | {ratio} |"
        )
    lines += [
        "",
        "Every run:",
        "",
        "| round | server | replicas | model | tensors | req/s | p50 ms | p99 ms | requests | refused | lost "
        "| load before -> after (1 min) |",
        "|---:|---|---:|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results["rows"]:
        lines.append(
            f"| {r['round']} | {r['server']} | {r['replicas'] or '-'} | {r['model']} | {r['tensors']} | "
            f"{r['requests_per_s']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['requests']:,} | "
            f"{r['refused']} | {r['lost']} | {r['load_before'][0]:g} -> {r['load_after'][0]:g} |"
        )
    lines += ["", f"Replicas answering {SAMPLED_REQUESTS} sequential requests (node/replica: count):", ""]
    for label, seen in results["answering"].items():
        lines.append(f"- {label}: " + ", ".join(f"`{k}` {v}" for k, v in seen.items()))
    lines += ["", f"Lost requests in the whole run: {results['lost']}."]
    text = "\n".join(lines) + "\n"
    if results.get("batch") is not None:
        from torchzoo.bench import batch_throughput

        text += "\n" + batch_throughput.render(results["batch"])
    return text
