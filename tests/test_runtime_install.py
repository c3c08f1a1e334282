"""The runtime install: a fresh virtual environment with ``pip install '.[cpu]'`` has no torch and no
scikit-learn, and still predicts from a copied artifact through the CLI and the Python API."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support import ROOT, Zoo

pytestmark = pytest.mark.slow  # a fresh virtual environment and a pip install

API = """
from torchzoo.serve_cli import load
result = load({directory!r}).predict(["Rossi"])[0]
print(result["label"], round(result["top"][0]["probability"], 6))
"""


@pytest.fixture(scope="module")
def runtime_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("runtime-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", f"{ROOT}[cpu]"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    return venv


def _run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(venv / "bin" / args[0]), *args[1:]], capture_output=True, text=True, timeout=300, cwd=cwd
    )


def test_runtime_install_has_no_training_stack(runtime_venv: Path, tmp_path: Path) -> None:
    for module in ("torch", "sklearn", "matplotlib", "onnx"):
        result = _run(runtime_venv, "python", "-c", f"import {module}", cwd=tmp_path)
        assert result.returncode != 0 and "ModuleNotFoundError" in result.stderr, module
    result = _run(runtime_venv, "python", "-c", "import onnxruntime, numpy, PIL, typer, rich", cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_runtime_install_predicts_from_a_copied_artifact(runtime_venv: Path, zoo: Zoo, tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere" / "names"
    shutil.copytree(zoo.exported("names") / "names", copy)
    expected = {"label": "Italian"}
    cli = _run(runtime_venv, "torchzoo", "predict", str(copy), "Rossi", "--json", cwd=tmp_path)
    assert cli.returncode == 0, cli.stderr
    top = json.loads(cli.stdout)["results"][0]
    assert top["label"] == expected["label"]
    api = _run(runtime_venv, "python", "-c", API.format(directory=str(copy)), cwd=tmp_path)
    assert api.returncode == 0, api.stderr
    label, probability = api.stdout.split()
    assert label == "Italian" and abs(float(probability) - top["top"][0]["probability"]) < 1e-6


def test_runtime_install_says_what_training_needs(runtime_venv: Path, tmp_path: Path) -> None:
    for command in (["train", "names"], ["export", "names"], ["verify", "all"], ["bench"], ["report"]):
        result = _run(runtime_venv, "torchzoo", *command, cwd=tmp_path)
        assert result.returncode == 2, (command, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "needs the train extra" in lines[0] and "torchzoo[train,cpu]" in lines[0], lines


def test_runtime_install_lists_the_artifacts_it_has(runtime_venv: Path, zoo: Zoo, tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    shutil.copytree(zoo.exported("names") / "names", root / "names")
    result = _run(runtime_venv, "torchzoo", "list", "--json", "--artifacts-dir", str(root), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == ["names"] and rows[0]["status"].startswith("exported")
