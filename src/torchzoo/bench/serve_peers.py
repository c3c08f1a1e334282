"""``torchzoo bench --serve``'s peers: the servers a user would pick instead of ``torchzoo serve``, each serving
the same mnist-mlp ``model.onnx`` with onnxruntime from its own virtual environment, measured beside torchzoo
in interleaved rounds with the same load generators, plus a soak of torchzoo with model reloads.

Peers, at their documented defaults (the apps are in :mod:`torchzoo.bench.peer_apps`): KServe's Python
``ModelServer`` (v2 JSON and binary tensors), Seldon MLServer with a custom runtime (v2 JSON; also with its
adaptive batching on), LitServe and BentoML (v2-shaped JSON to their own routes). onnxruntime's intra-op
spinning is off in every one, as in torchzoo's server. Each peer's environment is made once, under
``~/.cache/torchzoo/bench-peers`` (``$TORCHZOO_BENCH_PEERS``), with the versions pinned below.

REST is driven by ``wrk`` at 64 connections; gRPC (torchzoo's, raw tensors) by ``h2load`` (nghttp2-client)
with the same 64 connections, one stream each. Every request is counted; a lost one (socket error, timeout, a
gRPC answer of another size than the good one) fails the run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from torchzoo.bench.serve_load import Running, free_port, request_bodies, sample_input, torchzoo_server, wrk
from torchzoo.core import artifact
from torchzoo.core.errors import UserInputError

MODEL = "mnist-mlp"
CONNECTIONS = 64
APPS = Path(__file__).parent / "peer_apps"
#: each peer's pinned packages (beside onnxruntime and numpy at the versions torchzoo's own environment has)
REQUIREMENTS = {
    "kserve": ["kserve==0.21.0"],
    "mlserver": ["mlserver==1.7.1", "uvloop<0.22"],  # MLServer's workers die with uvloop 0.23
    "litserve": ["litserve==0.2.19"],
    "bentoml": ["bentoml==1.4.40"],
}
#: the soak: torchzoo at 64 connections while its model is reloaded every RELOAD_EVERY seconds
RELOAD_EVERY = 5.0


@dataclass(frozen=True)
class Target:
    """One line of the table: a server, the route the load goes to, and the body kind it sends."""

    server: str
    tensors: str  # json | binary | grpc
    url: str
    body: Path
    header_length: int | None = None
    pid: int | None = None  # the server's process, whose (and whose children's) CPU time per request is measured


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process and every process under it (a peer's workers), from /proc."""
    stats: dict[int, tuple[int, float]] = {}  # pid -> (parent, cpu seconds)
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:  # gone meanwhile
            continue
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
    tree, changed = {pid}, True
    while changed:
        grown = tree | {child for child, (parent, _) in stats.items() if parent in tree}
        changed, tree = grown != tree, grown
    return sum(stats[p][1] for p in tree if p in stats)


def peers_root() -> Path:
    return Path(os.environ.get("TORCHZOO_BENCH_PEERS") or Path.home() / ".cache" / "torchzoo" / "bench-peers")


def peer_python(name: str) -> Path:
    """The peer's own interpreter; its virtual environment is made (with pip, from the index) the first time."""
    venv = peers_root() / name
    python = venv / "bin" / "python"
    if not python.exists():
        import onnxruntime

        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        packages = [*REQUIREMENTS[name], f"onnxruntime=={onnxruntime.__version__}", f"numpy=={np.__version__}"]
        install = subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], capture_output=True, text=True)
        if install.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            raise UserInputError(f"could not install the {name} peer ({' '.join(packages)}): {install.stderr[-300:]}")
    return python


def grpc_body(array: np.ndarray, name: str, work: Path) -> Path:
    """One ModelInferRequest with raw contents, framed as gRPC sends it (a 5-byte prefix), for h2load."""
    from tritonclient.grpc import service_pb2 as pb

    request = pb.ModelInferRequest(model_name=MODEL)
    request.inputs.add(name=name, datatype="FP32", shape=list(array.shape))
    request.raw_input_contents.append(array.tobytes())
    message = request.SerializeToString()
    path = work / "grpc.body"
    path.write_bytes(b"\x00" + struct.pack(">I", len(message)) + message)
    return path


def h2load(url: str, body: Path, seconds: float, work: Path, good_bytes: int) -> dict[str, Any]:
    """gRPC unary calls at CONNECTIONS connections for ``seconds``: req/s, p50/p99 from the per-request log."""
    log = work / "h2load.log"
    command = ["h2load", "-D", str(max(1, round(seconds))), "-c", str(CONNECTIONS), "-m", "1", "-d", str(body)]
    command += ["-H", "content-type: application/grpc", "-H", "te: trailers", "--log-file", str(log), url]
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    return parse_h2load(result.stdout, log.read_text() if log.exists() else "", good_bytes)


def parse_h2load(output: str, log: str, good_bytes: int) -> dict[str, Any]:
    """h2load's summary and per-request log (start, status, microseconds): answers of another size than a good
    one are gRPC errors (HTTP says 200 for them too), counted as refused; failed and timed-out ones as lost."""
    done = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed", output)
    if done is None:
        raise UserInputError(f"h2load failed: {' '.join(output.split())[-300:]}")
    total, _, _, succeeded, _ = (int(g) for g in done.groups())
    data = int(re.search(r"traffic: .*?(\d+)\) total.*?\((\d+)\) data", output).group(2))
    refused = succeeded - min(succeeded, data // good_bytes) if good_bytes else 0
    durations = sorted(int(line.split()[2]) / 1000 for line in log.splitlines() if len(line.split()) >= 3)
    seconds = float(re.search(r"finished in ([\d.]+)s", output).group(1))
    return {
        "requests_per_s": succeeded / seconds if seconds else 0.0,
        "p50_ms": percentile(durations, 50),
        "p99_ms": percentile(durations, 99),
        "requests": total,
        "answered": succeeded - refused,
        "refused": refused,
        "lost": total - succeeded,
    }


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return float(np.percentile(np.asarray(values), q))


def _start_peers(graph: Path, work: Path) -> dict[str, tuple[Running, str]]:
    """Every peer, started; name -> (the running server, the path its inference route has)."""
    started: dict[str, tuple[Running, str]] = {}
    env = {**os.environ, "PEER_GRAPH": str(graph)}
    port = free_port()
    command = [str(peer_python("kserve")), str(APPS / "kserve_app.py"), str(graph), MODEL, str(port), str(free_port())]
    started["kserve"] = (Running(command, f"http://127.0.0.1:{port}", "/v2/health/ready"), f"/v2/models/{MODEL}/infer")
    for label, batching in (("mlserver", {}), ("mlserver-adaptive", {"max_batch_size": 64, "max_batch_time": 0.002})):
        directory = work / label
        directory.mkdir()
        shutil.copy(APPS / "mlserver_runtime.py", directory / "mlserver_runtime.py")
        settings = {"name": MODEL, "implementation": "mlserver_runtime.OnnxRuntime", "parameters": {"uri": str(graph)}}
        (directory / "model-settings.json").write_text(json.dumps({**settings, **batching}))
        port = free_port()
        server = {"http_port": port, "grpc_port": free_port(), "metrics_port": free_port()}
        (directory / "settings.json").write_text(json.dumps(server))
        mlserver = peer_python("mlserver").parent / "mlserver"
        running = Running([str(mlserver), "start", str(directory)], f"http://127.0.0.1:{port}", "/v2/health/ready")
        started[label] = (running, f"/v2/models/{MODEL}/infer")
    port = free_port()
    command = [str(peer_python("litserve")), str(APPS / "litserve_app.py"), str(graph), str(port)]
    started["litserve"] = (Running(command, f"http://127.0.0.1:{port}", "/health"), "/predict")
    port = free_port()
    bentoml = peer_python("bentoml").parent / "bentoml"
    command = [str(bentoml), "serve", "bentoml_service:OnnxService", "--port", str(port), "--working-dir", str(APPS)]
    started["bentoml"] = (Running(command, f"http://127.0.0.1:{port}", "/readyz", env=env), "/infer")
    return started


def run(root: Path, seconds: float = 10.0, rounds: int = 3, soak_seconds: float = 60.0) -> dict[str, Any]:
    """The peers table (median of ``rounds`` interleaved rounds of ``seconds`` at 64 connections) and the soak."""
    for tool, package in (("wrk", "wrk"), ("h2load", "nghttp2-client")):
        if shutil.which(tool) is None:
            raise UserInputError(f"the peers' load test needs {tool}: apt-get install -y {package}")
    directory = root / MODEL
    if not (directory / artifact.MANIFEST).is_file():
        raise UserInputError(f"export {MODEL} first (torchzoo export {MODEL})")
    graph = directory / artifact.ONNX
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bodies = request_bodies(directory, work)
        (json_body, _), (binary_body, header_length) = bodies["json"], bodies["binary"]
        name = artifact.read_json(directory / artifact.MANIFEST)["inputs"][0]["name"]
        grpc = grpc_body(sample_input(directory), name, work)
        grpc_port = free_port()
        servers = {"torchzoo": (torchzoo_server(root, MODEL, "--grpc-port", str(grpc_port)), "")}
        try:
            servers.update(_start_peers(graph, work))
            targets = _targets(servers, json_body, binary_body, header_length)
            good = _good_grpc_bytes(f"127.0.0.1:{grpc_port}", grpc, work)
            grpc_url = f"http://127.0.0.1:{grpc_port}"
            rows = _rounds(targets, grpc_url, servers["torchzoo"][0].process.pid, grpc, good, seconds, rounds, work)
        finally:
            for running, _ in servers.values():
                running.stop()
        soak = _soak(root, binary_body, header_length, soak_seconds, work) if soak_seconds else {}
    return summarize(rows, soak, seconds, rounds)


def _targets(
    servers: dict[str, tuple[Running, str]], json_body: Path, binary_body: Path, header_length: int
) -> list[Target]:
    torchzoo = servers["torchzoo"][0]
    tz, pid = torchzoo.url + f"/v2/models/{MODEL}/infer", torchzoo.process.pid
    targets = [
        Target("torchzoo", "json", tz, json_body, pid=pid),
        Target("torchzoo", "binary", tz, binary_body, header_length, pid=pid),
    ]
    for name, (running, path) in servers.items():
        if name == "torchzoo":
            continue
        targets.append(Target(name, "json", running.url + path, json_body, pid=running.process.pid))
        if name == "kserve":  # the one peer that reads the binary tensor extension
            targets.append(Target(name, "binary", running.url + path, binary_body, header_length, running.process.pid))
    return targets


def _good_grpc_bytes(address: str, body: Path, work: Path) -> int:
    """The size of one good answer's data, from one call checked with tritonclient first."""
    import tritonclient.grpc as triton

    if not triton.InferenceServerClient(address).is_model_ready(MODEL):
        raise UserInputError(f"torchzoo's gRPC service at {address} does not have {MODEL} ready")
    one = subprocess.run(
        ["h2load", "-n", "1", "-c", "1", "-d", str(body), "-H", "content-type: application/grpc", "-H", "te: trailers",
         f"http://{address}/inference.GRPCInferenceService/ModelInfer"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return int(re.search(r"\((\d+)\) data", one.stdout).group(1))


def _rounds(
    targets: list[Target], grpc_url: str, grpc_pid: int, grpc: Path, good: int, seconds: float, rounds: int,
    work: Path,
) -> list[dict[str, Any]]:  # fmt: skip
    """Every target once a round, in the same order; each run's server CPU time per answered request (the
    server's processes, its workers included)."""
    rows = []
    for round_ in range(1, rounds + 1):
        for target in targets:
            before = cpu_seconds(target.pid) if target.pid else None
            result = wrk(target.url, target.body, target.header_length, CONNECTIONS, seconds, work)
            cpu = _cpu_ms(target.pid, before, result)
            rows.append({"round": round_, "server": target.server, "tensors": target.tensors, **result,
                         "cpu_ms_per_request": cpu})  # fmt: skip
        before = cpu_seconds(grpc_pid)
        result = h2load(f"{grpc_url}/inference.GRPCInferenceService/ModelInfer", grpc, seconds, work, good)
        rows.append({"round": round_, "server": "torchzoo", "tensors": "grpc", **result,
                     "cpu_ms_per_request": _cpu_ms(grpc_pid, before, result)})  # fmt: skip
    return rows


def _cpu_ms(pid: int | None, before: float | None, result: dict[str, Any]) -> float | None:
    if pid is None or before is None or not result["answered"]:
        return None
    return (cpu_seconds(pid) - before) * 1000 / result["answered"]


def _soak(root: Path, body: Path, header_length: int, seconds: float, work: Path) -> dict[str, Any]:
    """torchzoo at 64 connections (binary tensors) for ``seconds`` while the model is reloaded every RELOAD_EVERY
    seconds through the repository extension: every request must be answered."""
    repository = work / "repository"
    shutil.copytree(root / MODEL, repository / MODEL / "1")
    server = torchzoo_server(repository, MODEL, "--model-control", "explicit")
    reloads: list[int] = []
    stop = threading.Event()

    def reload() -> None:
        while not stop.wait(RELOAD_EVERY):
            request = urllib.request.Request(f"{server.url}/v2/repository/models/{MODEL}/load", b"{}", method="POST")
            with urllib.request.urlopen(request, timeout=60) as response:
                reloads.append(response.status)

    reloader = threading.Thread(target=reload, daemon=True)
    try:
        before = server.rss_mb()
        reloader.start()
        result = wrk(f"{server.url}/v2/models/{MODEL}/infer", body, header_length, CONNECTIONS, seconds, work)
        stop.set()
        reloader.join(timeout=60)
        after = server.rss_mb()
    finally:
        stop.set()
        server.stop()
    return {"seconds": seconds, "reloads": len(reloads), "reloads_ok": reloads.count(200), "rss_before_mb": before,
            "rss_after_mb": after, **result}  # fmt: skip


def summarize(rows: list[dict[str, Any]], soak: dict[str, Any], seconds: float, rounds: int) -> dict[str, Any]:
    """The median of each server and body kind over the rounds, torchzoo's ratio to the best peer, the targets."""
    keys = sorted({(r["server"], r["tensors"]) for r in rows}, key=lambda k: (k[0] != "torchzoo", k))
    medians = []
    for server, tensors in keys:
        runs = [r for r in rows if (r["server"], r["tensors"]) == (server, tensors)]
        medians.append(
            {
                "server": server,
                "tensors": tensors,
                "requests_per_s": statistics.median(r["requests_per_s"] for r in runs),
                "p50_ms": statistics.median(r["p50_ms"] for r in runs),
                "p99_ms": statistics.median(r["p99_ms"] for r in runs),
                "lost": sum(r["lost"] for r in runs),
                "refused": sum(r["refused"] for r in runs),
                "cpu_ms_per_request": _median_or_none([r["cpu_ms_per_request"] for r in runs]),
            }
        )
    rate = {(m["server"], m["tensors"]): m["requests_per_s"] for m in medians}
    peers = [m for m in medians if m["server"] != "torchzoo" and not m["refused"]]  # a refusing peer is no peer
    best = max(peers, key=lambda m: m["requests_per_s"]) if peers else None
    best_rate = best["requests_per_s"] if best else float("nan")
    targets = {
        "rest_json_vs_best_peer": rate.get(("torchzoo", "json"), 0) / best_rate,
        "rest_binary_vs_best_peer": rate.get(("torchzoo", "binary"), 0) / best_rate,
        "grpc_vs_rest_binary": rate.get(("torchzoo", "grpc"), 0) / rate.get(("torchzoo", "binary"), float("nan")),
        "torchzoo_p99_ms": max(m["p99_ms"] for m in medians if m["server"] == "torchzoo"),
    }
    lost = sum(m["lost"] for m in medians) + soak.get("lost", 0)
    best_peer = f"{best['server']} {best['tensors']}" if best else None
    return {"medians": medians, "rows": rows, "best_peer": best_peer, "targets": targets, "soak": soak,
            "lost": lost, "seconds_per_run": seconds, "rounds": rounds, "connections": CONNECTIONS,
            "versions": {name: reqs[0] for name, reqs in REQUIREMENTS.items()}}  # fmt: skip


def _median_or_none(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def render(results: dict[str, Any]) -> str:
    t = results["targets"]
    lines = [
        "## Peers: the same mnist-mlp model.onnx in the servers a user would pick instead",
        "",
        f"Median of {results['rounds']} interleaved rounds of {results['seconds_per_run']:g} s at "
        f"{results['connections']} connections (`wrk -t1`; gRPC: `h2load`, one stream a connection), every server "
        "running at once on this 2-core machine beside the load generator; onnxruntime spinning off in all. "
        f"Peers: {', '.join(results['versions'].values())}, at their defaults (mlserver-adaptive: adaptive "
        "batching on, max_batch_size 64, max_batch_time 2 ms).",
        "",
        "| server | tensors | req/s | p50 ms | p99 ms | server CPU ms/request | refused | lost |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for m in results["medians"]:
        cpu = "-" if m["cpu_ms_per_request"] is None else f"{m['cpu_ms_per_request']:.3f}"
        lines.append(
            f"| {m['server']} | {m['tensors']} | {m['requests_per_s']:,.0f} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} | "
            f"{cpu} | {m['refused']} | {m['lost']} |"
        )
    lines += [
        "",
        f"Best peer: {results['best_peer']}. torchzoo REST JSON / best peer: {t['rest_json_vs_best_peer']:.2f}x, "
        f"binary / best peer: {t['rest_binary_vs_best_peer']:.2f}x (target >= 4x); gRPC / REST binary: "
        f"{t['grpc_vs_rest_binary']:.2f}x (target >= 1); torchzoo's worst p99: {t['torchzoo_p99_ms']:.1f} ms "
        "(target < 50 ms).",
    ]
    soak = results.get("soak") or {}
    if soak:
        lines += [
            "",
            f"Soak with reloads: {soak['seconds']:g} s at {results['connections']} connections, binary tensors, the "
            f"model reloaded every {RELOAD_EVERY:g} s ({soak['reloads_ok']} of {soak['reloads']} reloads answered "
            f"200): {soak['requests']:,} requests ({soak['requests_per_s']:,.0f} req/s, p99 {soak['p99_ms']:.1f} ms), "
            f"{soak['refused']} refused, {soak['lost']} lost; RSS {soak['rss_before_mb']:.1f} -> "
            f"{soak['rss_after_mb']:.1f} MiB.",
        ]
    lines += ["", f"Lost requests in the peers' run: {results['lost']}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # a quick look by hand: python -m torchzoo.bench.serve_peers ARTIFACTS_ROOT
    print(render(run(Path(sys.argv[1]), seconds=2, rounds=1, soak_seconds=11)))
