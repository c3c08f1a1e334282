"""The torch-free runtime: no torch import, artifacts copied anywhere, the embedding API, plain onnxruntime."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from support import ROOT, Zoo

NO_TORCH = """
import sys
from torchzoo.cli import main
sys.argv = ["torchzoo", "predict", "names", "Rossi", "--json", "--artifacts-dir", {root!r}]
try:
    main()
except SystemExit as exc:
    assert not exc.code, exc.code
leaked = sorted(m for m in sys.modules if m == "torch" or m.startswith(("torch.", "torchzoo.train", "torchzoo.export")))
assert not leaked, leaked
print("NO_TORCH_OK")
"""


def test_predict_never_imports_torch(zoo: Zoo) -> None:
    root = zoo.exported("names")
    result = subprocess.run(
        [sys.executable, "-c", NO_TORCH.format(root=str(root))], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert "NO_TORCH_OK" in result.stdout and '"Italian"' in result.stdout


def test_artifact_copied_elsewhere_predicts(zoo: Zoo, tmp_path: Path) -> None:
    from torchzoo.serve_cli import load

    copy = tmp_path / "somewhere" / "my-names-model"
    shutil.copytree(zoo.exported("names") / "names", copy)
    model = load(copy)
    assert model.predict(["Rossi"])[0]["label"] == "Italian"
    assert load(copy) is model  # one session per artifact


def test_api_is_thread_safe(zoo: Zoo) -> None:
    from torchzoo.serve_cli import load

    model = load(zoo.exported("names") / "names")
    expected = model.predict(["Rossi", "Nakamura", "Smith"])
    outcomes: list[list[dict]] = []

    def work() -> None:
        for _ in range(20):
            outcomes.append(model.predict(["Rossi", "Nakamura", "Smith"]))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(outcomes) == 80 and all(o == expected for o in outcomes)


def test_readme_plain_onnxruntime_example_runs(zoo: Zoo, tmp_path: Path) -> None:
    """The README's 'use an artifact without torchzoo' snippet, run as written against a real artifact."""
    readme = (ROOT / "README.md").read_text()
    snippet = readme.split("<!-- plain-onnxruntime-example -->")[1].split("```python")[1].split("```")[0]
    shutil.copytree(zoo.exported("names") / "names", tmp_path / "names")
    result = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Italian" in result.stdout.splitlines()[0]
    assert "torchzoo" not in snippet.replace("torchzoo.", "")  # metadata keys only, no torchzoo import


def test_manifest_is_self_describing(zoo: Zoo) -> None:
    directory = zoo.exported("names") / "names"
    manifest = json.loads((directory / "manifest.json").read_text())
    for key in (
        "schema_version",
        "model",
        "task",
        "inputs",
        "outputs",
        "labels",
        "preprocessing",
        "metrics",
        "seed",
        "versions",
        "files",
        "formats",
    ):
        assert key in manifest
    assert manifest["formats"]["onnx"]["opset"] >= 18
    assert {"model.onnx", "model.pt", "model.torchscript.pt", "equivalence.json"} <= set(manifest["files"])
    import onnx

    props = {p.key: p.value for p in onnx.load(str(directory / "model.onnx")).metadata_props}
    assert json.loads(props["torchzoo.labels"]) == manifest["labels"]


def test_provider_cuda_when_unavailable_is_a_clear_error(zoo: Zoo) -> None:
    """No GPU visible to the process (also on a CUDA machine): an explicit --provider cuda is refused."""
    from support import run_cli

    root = str(zoo.exported("names"))
    env = {"CUDA_VISIBLE_DEVICES": ""}
    result = run_cli("predict", "names", "Rossi", "--provider", "cuda", "--artifacts-dir", root, env=env)
    assert result.returncode == 2
    assert "CUDA was requested but onnxruntime cannot use it here" in result.stderr


def test_provider_auto_falls_back_quietly(monkeypatch, zoo: Zoo) -> None:
    """onnxruntime-gpu without CUDA libraries lists CUDA but creates a CPU session: auto says so in one
    line and runs on CPU."""
    import onnxruntime

    from torchzoo.core import session as session_module

    real = onnxruntime.InferenceSession

    class CudaListedButMissing(real):  # type: ignore[misc, valid-type]
        def __init__(self, path, options=None, providers=None):
            super().__init__(path, options, providers=["CPUExecutionProvider"])

    monkeypatch.setattr(
        onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    monkeypatch.setattr(onnxruntime, "InferenceSession", CudaListedButMissing)
    graph = zoo.exported("names") / "names" / "model.onnx"
    created = session_module.create_session(graph, "auto")
    assert created.provider == "cpu" and "CUDA provider failed to initialise" in created.notice
    assert created.session.get_providers() == ["CPUExecutionProvider"]
