"""Shared fixtures: models trained once per test session on the quick profile, in a temp artifact root.

``zoo.trained("names")`` trains (once) and returns the artifact root; ``zoo.exported("names")`` also
exports every format (once). Tests that need a model ask for it by name, so running one test file
trains only what it uses.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


class Zoo:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._trained: set[str] = set()
        self._exported: set[str] = set()

    def trained(self, name: str) -> Path:
        if name not in self._trained:
            result = run_cli("train", name, "--profile", "quick", "--artifacts-dir", str(self.root))
            assert result.returncode == 0, result.stderr + result.stdout
            self._trained.add(name)
        return self.root

    def exported(self, name: str) -> Path:
        self.trained(name)
        if name not in self._exported:
            result = run_cli("export", name, "--format", "all", "--artifacts-dir", str(self.root))
            assert result.returncode == 0, result.stderr + result.stdout
            self._exported.add(name)
        return self.root

    def directory(self, name: str) -> Path:
        return self.root / name


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 1800) -> subprocess.CompletedProcess:
    """Run ``torchzoo ARGS`` in a fresh process from the repository root (so ../shared/data is found)."""
    return subprocess.run(
        [sys.executable, "-c", "from torchzoo.cli import main; main()", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


@pytest.fixture(scope="session")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> Zoo:
    return Zoo(tmp_path_factory.mktemp("artifacts"))
