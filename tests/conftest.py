"""Fixtures (the helpers they use are plain code in support.py): the data root and the session's model zoo; and
the ``slow`` lane.

Datasets reach tests through one session fixture, ``data_root``: ``$TORCHZOO_DATA`` when it is set, else
``torchzoo data download all`` into a cache directory that later sessions reuse (so a clone with network
passes on any machine). With neither, the session stops with one line saying what to do. ``$TORCHZOO_DATA`` is
taken out of this process's environment at start-up: code run in this process gets the data root only as an
argument (the fixture's value), CLI subprocesses as ``TORCHZOO_DATA`` set by ``support.run_cli`` /
``support.cli_env`` once the fixture has run, and by the zoo's training and export.

``pytest -m "not slow"`` is the fast lane: every test that trains or exports models (every test that uses the
``zoo`` fixture, marked here) or starts a heavy system (Ray, Triton, a browser, a fresh venv: marked in its
module) is ``slow``. CI runs both lanes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from support import DATA_ENV, Zoo, use_data_root

_DATA_FROM_ENV = pytest.StashKey[str | None]()

#: the datasets the tests read, fetched into the cache when $TORCHZOO_DATA is not set
DOWNLOAD = ("data", "download", "all")
#: the slowest part is CIFAR-10's 170 MB archive
DOWNLOAD_TIMEOUT = 3600


def data_cache() -> Path:
    """Where ``torchzoo data download all`` puts the tests' datasets: ``$XDG_CACHE_HOME/torchzoo/test-data``
    (default ``~/.cache/torchzoo/test-data``), reused by every later session."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "torchzoo" / "test-data"


def pytest_configure(config: pytest.Config) -> None:
    value = os.environ.pop(DATA_ENV, None)
    config.stash[_DATA_FROM_ENV] = str(Path(value).resolve()) if value else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test that trains or exports through the zoo (directly or through another fixture) is slow."""
    for item in items:
        if "zoo" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def data_root(pytestconfig: pytest.Config) -> Path:
    """The data root every test reads datasets from (absolute): ``$TORCHZOO_DATA``, else the download cache."""
    given = pytestconfig.stash[_DATA_FROM_ENV]
    if given is not None:
        if not Path(given).is_dir():
            pytest.exit(f"{DATA_ENV}={given} is not a directory: point it at a data root", returncode=1)
        use_data_root(Path(given))
        return Path(given)
    cache = data_cache()
    command = ["torchzoo", *DOWNLOAD, "--data-dir", str(cache)]
    result = subprocess.run(
        [sys.executable, "-c", "from torchzoo.cli import main; main()", *command[1:]],
        capture_output=True,
        text=True,
        timeout=DOWNLOAD_TIMEOUT,
        env={**os.environ, "COLUMNS": "200"},
    )
    if result.returncode != 0:
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        errors = [line.removeprefix("torchzoo: error: ") for line in lines if line.startswith("torchzoo: error:")]
        why = (errors or lines or [f"exit {result.returncode}"])[-1]
        pytest.exit(
            f"no test data: {DATA_ENV} is not set and '{' '.join(command)}' failed ({why}); "
            f"set {DATA_ENV} to a data root (names/, MNIST/raw/, cifar-10-batches-py/) or run that command "
            "where there is network",
            returncode=1,
        )
    use_data_root(cache)
    return cache


@pytest.fixture(scope="session")
def zoo(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Zoo:
    return Zoo(tmp_path_factory.mktemp("artifacts"), data_root)
