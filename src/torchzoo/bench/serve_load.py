"""``torchzoo bench --serve``: an HTTP load test of ``torchzoo serve`` with ``wrk`` (a C load generator:
Python generators saturate these 2 cores first) on loopback, bounded in time.

For each model: requests/s and p50/p99 latency at 1, 8 and 64 connections, JSON and binary tensors,
dynamic batching on and off; beside them, in the same run, the floor (an empty endpoint that reads the
body) and the baseline a user would write (``json.loads`` + ``session.run`` per request). Every request
is counted: answered (2xx), refused (non-2xx, which the server explains), or lost (socket errors and
timeouts, which fail the run). A soak at 64 connections reports the server's RSS growth.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from torchzoo.core import artifact
from torchzoo.core.errors import UserInputError

MODELS = ("mnist-mlp", "mnist-lstm", "cifar10-cnn", "names")
CONNECTIONS = (1, 8, 64)
LUA = """
local f = assert(io.open("{body}", "rb"))
wrk.method = "POST"
wrk.body = f:read("*all")
f:close()
wrk.headers["Content-Type"] = "application/json"
{header}
"""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sample_input(directory: Path) -> np.ndarray:
    """One real held-out input (batch 1) of the model, from its saved check cases."""
    cases = artifact.read_json(directory / artifact.EQUIVALENCE)["cases"]
    case = next(c for c in cases if c["kind"] == "heldout" and c["input_shapes"][0][0] == 1)
    with np.load(directory / artifact.CHECK_INPUTS) as npz:
        return np.ascontiguousarray(npz[f"{case['name']}/0"], dtype=np.float32)


def request_bodies(directory: Path, work: Path) -> dict[str, tuple[Path, int | None]]:
    manifest = artifact.read_json(directory / artifact.MANIFEST)
    name = manifest["inputs"][0]["name"]
    array = sample_input(directory)
    tensor = {"name": name, "shape": list(array.shape), "datatype": "FP32"}
    as_json = json.dumps({"inputs": [{**tensor, "data": array.ravel().tolist()}]}).encode()
    header = json.dumps(
        {
            "inputs": [{**tensor, "parameters": {"binary_data_size": array.nbytes}}],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    (work / "json.body").write_bytes(as_json)
    (work / "binary.body").write_bytes(header + array.tobytes())
    return {"json": (work / "json.body", None), "binary": (work / "binary.body", len(header))}


def _wait_ready(url: str, process: subprocess.Popen, path: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise UserInputError(f"a server for the load test exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url + path, timeout=2) as response:
                if response.status in (200, 405):
                    return
        except urllib.error.HTTPError as exc:
            if exc.code == 405:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise UserInputError(f"a server for the load test was not ready in {timeout:.0f} s")


class Running:
    def __init__(self, command: list[str], url: str, ready_path: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        self.url = url
        _wait_ready(url, self.process, ready_path)

    def rss_mb(self) -> float:
        with open(f"/proc/{self.process.pid}/status") as fh:
            return next(int(line.split()[1]) / 1024 for line in fh if line.startswith("VmRSS:"))

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def torchzoo_server(root: Path, model: str, *options: str) -> Running:
    """``torchzoo serve MODEL`` on a free port of loopback (CPU provider), with ``options`` added, once ready."""
    port = free_port()
    command = [sys.executable, "-c", "from torchzoo.cli import main; main()", "serve", model]
    command += ["--artifacts-dir", str(root), "--port", str(port), "--provider", "cpu", *options]
    return Running(command, f"http://127.0.0.1:{port}", "/v2/health/ready")


def reference_server(kind: str, graph: Path | None = None) -> Running:
    port = free_port()
    command = [sys.executable, "-m", "torchzoo.bench.serve_refs", kind, str(port)] + ([str(graph)] if graph else [])
    return Running(command, f"http://127.0.0.1:{port}", "/v2/models/x/infer")


def wrk(
    url: str, body: Path, header_length: int | None, connections: int, seconds: float, work: Path
) -> dict[str, Any]:
    header = (  # binary bodies say so: KServe reads a body declared JSON as JSON
        ""
        if header_length is None
        else f'wrk.headers["Inference-Header-Content-Length"] = "{header_length}"\n'
        'wrk.headers["Content-Type"] = "application/octet-stream"'
    )
    script = work / f"post-{body.stem}.lua"
    script.write_text(LUA.format(body=body, header=header))
    result = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    if "requests in" not in result.stdout:
        raise UserInputError(f"wrk against {url} failed: {' '.join((result.stdout + result.stderr).split())[-300:]}")
    return parse_wrk(result.stdout)


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1000.0}[unit]


def parse_wrk(output: str) -> dict[str, Any]:
    """requests/s, p50/p99 (ms), and every request counted: answered, refused (non-2xx), lost (errors)."""
    total = int(re.search(r"(\d+) requests in", output).group(1))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    lost = sum(int(g) for g in errors.groups()) if errors else 0
    refused = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", output)) else 0
    latency = dict(re.findall(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+(?:us|ms|s))", output, flags=re.M))
    return {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50_ms": _ms(latency["50"]),
        "p99_ms": _ms(latency["99"]),
        "requests": total,
        "answered": total - refused,
        "refused": refused,
        "lost": lost,
    }


def run(root: Path, seconds: float = 4.0, soak_seconds: float = 60.0) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise UserInputError("the load test needs wrk: apt-get install -y wrk")
    missing = [m for m in MODELS if not (root / m / artifact.MANIFEST).is_file()]
    if missing:
        raise UserInputError(f"export {', '.join(missing)} first (torchzoo export NAME)")
    rows: list[dict[str, Any]] = []
    soak: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        floor = reference_server("floor")
        try:
            body, _ = request_bodies(root / "mnist-mlp", work)["json"]
            for c in CONNECTIONS:
                rows.append(
                    {
                        "server": "floor",
                        "model": "-",
                        "tensors": "json",
                        "batching": "-",
                        "connections": c,
                        **wrk(floor.url + "/v2/models/x/infer", body, None, c, seconds, work),
                    }
                )
        finally:
            floor.stop()
        for model in MODELS:
            bodies = request_bodies(root / model, work)
            baseline = reference_server("baseline", root / model / artifact.ONNX)
            try:
                for c in CONNECTIONS:
                    body, _ = bodies["json"]
                    rows.append(
                        {
                            "server": "baseline",
                            "model": model,
                            "tensors": "json",
                            "batching": "-",
                            "connections": c,
                            **wrk(baseline.url + "/v2/models/x/infer", body, None, c, seconds, work),
                        }
                    )
            finally:
                baseline.stop()
            for batching in (True, False):
                server = torchzoo_server(root, model, *([] if batching else ["--max-batch", "1"]))
                url = f"{server.url}/v2/models/{model}/infer"
                try:
                    for kind, (body, header_length) in bodies.items():
                        for c in CONNECTIONS:
                            rows.append(
                                {
                                    "server": "torchzoo",
                                    "model": model,
                                    "tensors": kind,
                                    "batching": "on" if batching else "off",
                                    "connections": c,
                                    **wrk(url, body, header_length, c, seconds, work),
                                }
                            )
                    if model == "mnist-mlp" and batching and soak_seconds:
                        before = server.rss_mb()
                        result = wrk(url, bodies["binary"][0], bodies["binary"][1], 64, soak_seconds, work)
                        soak = {
                            "model": model,
                            "seconds": soak_seconds,
                            "rss_before_mb": before,
                            "rss_after_mb": server.rss_mb(),
                            **result,
                        }
                finally:
                    server.stop()
    lost = sum(r["lost"] for r in rows) + soak.get("lost", 0)
    return {"rows": rows, "soak": soak, "lost": lost, "seconds_per_run": seconds}


def render(results: dict[str, Any]) -> str:
    lines = [
        "# torchzoo serve: HTTP load test",
        "",
        f"`wrk -t1 -cN -d{results['seconds_per_run']:g}s` on loopback; one uvicorn process per server; this "
        "2-core machine runs the load generator and the server together. Written by `torchzoo bench --serve`.",
        "",
        "| server | model | tensors | batching | conn | req/s | p50 ms | p99 ms | requests | refused | lost |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["rows"]:
        lines.append(
            f"| {r['server']} | {r['model']} | {r['tensors']} | {r['batching']} | {r['connections']} | "
            f"{r['requests_per_s']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['requests']:,} | "
            f"{r['refused']} | {r['lost']} |"
        )
    soak = results.get("soak") or {}
    if soak:
        lines += [
            "",
            f"Soak: {soak['model']}, binary tensors, 64 connections, {soak['seconds']:g} s: "
            f"{soak['requests']:,} requests ({soak['requests_per_s']:,.0f} req/s), {soak['lost']} lost; "
            f"server RSS {soak['rss_before_mb']:.1f} -> "
            f"{soak['rss_after_mb']:.1f} MiB.",
        ]
    lines += ["", f"Lost requests in the whole run: {results['lost']}."]
    return "\n".join(lines) + "\n"
