"""Test helper: start ``torchzoo serve`` on a free port of 127.0.0.1, wait until it is ready, stop it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from support import ROOT


def stop(process: subprocess.Popen, grace: float, kill: Callable[[], None] | None = None) -> None:
    """SIGTERM a server still running; if it has not exited after ``grace`` seconds, ``kill`` (default: SIGKILL
    the process itself) and wait for it."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        (kill or process.kill)()
        process.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    def request(
        self, path: str, body: bytes | dict | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        req = urllib.request.Request(
            self.url + path, data=data, headers=headers or {}, method="POST" if data is not None else "GET"
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def json(self, path: str, body: dict | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict]:
        status, _, content = self.request(path, body, headers)
        return status, json.loads(content)


@contextlib.contextmanager
def serving(root: Path, *args: str, log: Path, timeout: float = 90, prelude: str = "") -> Iterator[Server]:
    """``prelude``: Python run in the server process before the CLI starts."""
    port = free_port()
    command = [sys.executable, "-c", prelude + "\nfrom torchzoo.cli import main; main()", "serve", *args]
    command += ["--artifacts-dir", str(root), "--port", str(port)]
    with open(log, "wb") as err:
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, env={**os.environ})
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(f"serve exited {process.returncode}: {log.read_text()}")
            with contextlib.suppress(OSError):
                if server.request("/v2/health/ready")[0] == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"serve not ready after {timeout} s: {log.read_text()}")
            time.sleep(0.2)
        yield server
    finally:
        stop(process, grace=30)
