"""Test helpers (plain code, no fixtures: those are in conftest.py): the repository root, ``run_cli``, the
session's model zoo, and :func:`asgi_request` (one request into an ASGI app, no server). ``serving.py`` starts
``torchzoo serve``.

The data root: conftest.py takes ``$TORCHZOO_DATA`` out of the test process's environment at start-up; its
``data_root`` fixture (which the ``zoo`` fixture uses) resolves the session's data root and hands it to
:func:`use_data_root`, and from then on every CLI subprocess started through :func:`run_cli` or with
:func:`cli_env` gets it as ``TORCHZOO_DATA``. Code run in the test process itself gets it only as an argument.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

#: the variable the product reads its data root from (``torchzoo.core.paths``)
DATA_ENV = "TORCHZOO_DATA"

_session: dict[str, Path] = {}


def use_data_root(root: Path) -> None:
    """Called by the ``data_root`` fixture: the data root every later CLI subprocess reads."""
    _session["data"] = root


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a CLI subprocess: this process's, ``COLUMNS=200``, ``TORCHZOO_DATA`` (the session's
    data root, once the ``data_root`` fixture has run), then ``extra``."""
    data = {DATA_ENV: str(_session["data"])} if "data" in _session else {}
    return {**os.environ, "COLUMNS": "200", **data, **extra}


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 1800) -> subprocess.CompletedProcess:
    """Run ``torchzoo ARGS`` in a fresh process from the repository root, with :func:`cli_env` (the session's
    data root as ``TORCHZOO_DATA``) and ``env`` on top."""
    return subprocess.run(
        [sys.executable, "-c", "from torchzoo.cli import main; main()", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(**(env or {})),
    )


class Zoo:
    """Models trained (quick profile) and exported once per test session, in one temporary artifact root.

    ``trained("names")`` trains once and returns the artifact root; ``exported("names")`` also exports every
    format once. Tests that need a model ask for it by name, so running one test file trains only what it uses.
    """

    def __init__(self, root: Path, data: Path) -> None:
        self.root = root
        #: the data root it trains and exports from (the ``data_root`` fixture)
        self.data = data
        self._env = {DATA_ENV: str(data)}
        self._trained: set[str] = set()
        self._exported: set[str] = set()

    def trained(self, name: str) -> Path:
        if name not in self._trained:
            result = run_cli("train", name, "--profile", "quick", "--artifacts-dir", str(self.root), env=self._env)
            assert result.returncode == 0, result.stderr + result.stdout
            self._trained.add(name)
        return self.root

    def exported(self, *names: str) -> Path:
        """Train and export each of ``names`` (once a session); the artifact root."""
        for name in names:
            self.trained(name)
            if name not in self._exported:
                result = run_cli("export", name, "--format", "all", "--artifacts-dir", str(self.root), env=self._env)
                assert result.returncode == 0, result.stderr + result.stdout
                self._exported.add(name)
        return self.root

    def directory(self, name: str) -> Path:
        return self.root / name


def asgi_request(
    app: Callable[..., Awaitable[None]], method: str, path: str, body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request straight into an ASGI app (no server, no socket): its status, headers and body."""
    sent: list[dict[str, Any]] = []
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return pending.pop() if pending else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"test"), (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = {k.decode().lower(): v.decode() for k, v in start.get("headers", [])}
    return start["status"], headers, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def heldout_inputs(root: Path, model: str) -> tuple[np.ndarray, ...]:
    """The largest held-out check case of an exported model: real inputs, saved in the artifact by export."""
    cases = json.loads((root / model / "equivalence.json").read_text())["cases"]
    case = max((c for c in cases if c["kind"] == "heldout"), key=lambda c: c["input_shapes"][0][0])
    with np.load(root / model / "check_inputs.npz") as npz:
        return tuple(npz[f"{case['name']}/{i}"] for i in range(len(case["input_shapes"])))
