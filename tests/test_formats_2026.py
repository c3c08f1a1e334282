"""The ``.pt2`` format, the int8/fp16 variants (checked by task accuracy, refused outside the thresholds),
``predict --variant`` / ``load(dir, variant=...)``, and ``verify`` re-checking all of them from the files."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from torchzoo.export.variants import RUN_BATCH
from torchzoo.train import registry
from torchzoo.train.names import _random_letters

from support import ROOT, Zoo, cli_env, run_cli

#: per model: input shapes the equivalence check did not use (other batch sizes; other name lengths)
NEW_SHAPES = {
    "mnist-mlp": [(1, 1, 28, 28), (3, 1, 28, 28), (130, 1, 28, 28)],
    "mnist-lstm": [(1, 28, 28), (5, 28, 28), (130, 28, 28)],
    "cifar10-cnn": [(1, 3, 32, 32), (5, 3, 32, 32)],
    "names": [(1, 2), (3, 5), (5, 33), (2, 64)],  # (batch, letters)
}
#: run ``torchzoo`` with the classification thresholds made impossible (agreement above 100%)
STRICT = (
    "import torchzoo.export.variants as v; "
    "v.THRESHOLDS['classification'] = {**v.THRESHOLDS['classification'], 'min_agreement': 1.01}; "
    "from torchzoo.cli import main; main()"
)


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def _eager(name: str, directory: Path) -> torch.nn.Module:
    spec = registry.get(name)
    model = spec.family.build_model(spec)
    model.load_state_dict(torch.load(directory / "model.pt", map_location="cpu", weights_only=True))
    return model.eval()


@pytest.mark.parametrize("name", list(NEW_SHAPES))
def test_pt2_loads_with_torch_export_and_matches_eager_at_unchecked_shapes(zoo: Zoo, name: str) -> None:
    directory = zoo.exported(name) / name
    report = _json(directory / "equivalence.json")["formats"]["pt2"]
    assert report["passed"] is True and report["heldout_top1_agreement"] == 1.0
    assert {c["runner"] for c in report["checks"]} == {"torch_export_load"}
    manifest = _json(directory / "manifest.json")
    assert manifest["formats"]["pt2"]["file"] == "model.pt2"
    assert (
        manifest["files"]["model.pt2"]["sha256"] == hashlib.sha256((directory / "model.pt2").read_bytes()).hexdigest()
    )

    model, program = _eager(name, directory), torch.export.load(str(directory / "model.pt2")).module()
    rng = np.random.default_rng(7)
    for shape in NEW_SHAPES[name]:
        x = _random_letters(rng, *shape) if name == "names" else rng.standard_normal(shape).astype(np.float32)
        with torch.no_grad():
            expected, got = model(torch.from_numpy(x)), program(torch.from_numpy(x))
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=registry.get(name).family.tolerance)


def test_names_onnx_is_one_scan_over_a_dynamic_length(zoo: Zoo) -> None:
    import onnx

    directory = zoo.exported("names") / "names"
    graph = onnx.load(str(directory / "model.onnx")).graph
    ops = [node.op_type for node in graph.node]
    assert ops.count("Scan") == 1 and "Loop" not in ops
    assert [d.dim_param for d in graph.input[0].type.tensor_type.shape.dim[:2]] == ["batch", "seq"]
    assert _json(directory / "manifest.json")["formats"]["onnx"]["exporter"] == "torch.onnx.export(dynamo=True)"


def test_mnist_mlp_int8_and_fp16_are_published_with_their_accuracy(zoo: Zoo) -> None:
    from torchzoo.core.tasks import get_task
    from torchzoo.serve_cli import load

    directory = zoo.exported("mnist-mlp") / "mnist-mlp"
    manifest = _json(directory / "manifest.json")
    variants = manifest["variants"]
    published = variants["published"]
    assert variants["default"] == "fp32" and variants["refused"] == {}
    assert variants["thresholds"]["max_drop_points"] == 0.5 and variants["thresholds"]["min_agreement"] == 0.99
    assert set(published) == {"fp32", "int8", "fp16"}
    assert {"onnx-int8", "onnx-fp16"} <= set(manifest["formats"])
    for entry in published.values():
        data = (directory / entry["file"]).read_bytes()
        assert entry["bytes"] == len(data) == manifest["files"][entry["file"]]["bytes"]
        assert entry["sha256"] == hashlib.sha256(data).hexdigest() == manifest["files"][entry["file"]]["sha256"]
    assert published["int8"]["bytes"] * 3 <= published["fp32"]["bytes"]
    assert published["fp16"]["bytes"] * 1.9 <= published["fp32"]["bytes"]

    # the recorded numbers are what the runtime really gives on the saved held-out set
    with np.load(io.BytesIO((directory / "heldout.npz").read_bytes())) as npz:
        inputs, targets = npz["input/0"], npz["targets"]
    assert len(targets) == 2000
    task = get_task("classification")

    def run(variant: str) -> np.ndarray:  # in the check's batches: int8 activations are quantized per call
        predictor = load(directory, variant=variant)
        return np.concatenate([predictor.run([inputs[i : i + RUN_BATCH]])[0] for i in range(0, len(inputs), RUN_BATCH)])

    fp32 = run("fp32")
    assert task.metric(fp32, targets) == published["fp32"]["accuracy"]
    for variant in ("int8", "fp16"):
        scores = run(variant)
        entry = published[variant]
        assert task.metric(scores, targets) == entry["accuracy"]
        assert task.agreement(fp32, scores) == entry["agreement_with_float32"] >= 0.99
        assert entry["accuracy"] >= entry["float32_accuracy"] - 0.005
        assert 0 < np.abs(scores - fp32).max() == pytest.approx(entry["max_abs_diff"], rel=1e-6)


def test_predict_variant_int8_runs_the_int8_graph(zoo: Zoo, tmp_path: Path) -> None:
    from torchzoo.train.datasets import read_mnist

    root = zoo.exported("mnist-mlp")
    test = read_mnist(zoo.data / "MNIST" / "raw").test
    paths = []
    for i in range(6):
        Image.fromarray(test.images[i]).save(tmp_path / f"digit_{i}.png")
        paths.append(str(tmp_path / f"digit_{i}.png"))
    runs = {}
    for variant in ("fp32", "int8"):
        result = run_cli("predict", "mnist-mlp", *paths, "--variant", variant, "--json", "--artifacts-dir", str(root))
        assert result.returncode == 0, result.stdout + result.stderr
        runs[variant] = json.loads(result.stdout)["results"]
    for fp32, int8 in zip(runs["fp32"], runs["int8"], strict=True):
        assert fp32["label"] == int8["label"]
    diffs = [abs(a["top"][0]["probability"] - b["top"][0]["probability"]) for a, b in zip(*runs.values(), strict=True)]
    assert 0 < max(diffs) < 0.05  # another graph ran, close to float32

    bad = run_cli("predict", "mnist-mlp", paths[0], "--variant", "int4", "--artifacts-dir", str(root))
    assert bad.returncode == 2 and "'int4' is not one of fp32, int8, fp16" in bad.stderr


def test_a_refused_variant_is_not_published_and_the_other_formats_are(zoo: Zoo, tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    shutil.copytree(zoo.exported("mnist-mlp") / "mnist-mlp", root / "mnist-mlp")
    again = run_cli("export", "mnist-mlp", "--format", "onnx", "--json", "--artifacts-dir", str(root))
    assert again.returncode == 0, again.stdout + again.stderr  # a new model.onnx re-makes the variants it had
    assert [r["format"] for r in json.loads(again.stdout)["checks"]] == ["onnx", "onnx-int8", "onnx-fp16"]

    command = [sys.executable, "-c", STRICT, "export", "mnist-mlp", "--format", "all", "--json"]
    result = subprocess.run(
        [*command, "--artifacts-dir", str(root)], cwd=ROOT, capture_output=True, text=True, timeout=600, env=cli_env()
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {r["format"]: r for r in json.loads(result.stdout)["checks"]}
    assert set(rows) == {"state_dict", "torchscript", "pt2", "onnx", "onnx-int8", "onnx-fp16"}
    for fmt in ("onnx-int8", "onnx-fp16"):
        assert rows[fmt]["refused"].startswith("outside the classification thresholds"), rows[fmt]
    assert all(rows[f]["passed"] and not rows[f]["refused"] for f in ("state_dict", "torchscript", "pt2", "onnx"))

    directory = root / "mnist-mlp"
    manifest = _json(directory / "manifest.json")
    assert set(manifest["formats"]) == {"state_dict", "torchscript", "pt2", "onnx"}
    assert set(manifest["variants"]["published"]) == {"fp32"}
    assert set(manifest["variants"]["refused"]) == {"int8", "fp16"}
    assert not (directory / "model.int8.onnx").exists() and not (directory / "model.fp16.onnx").exists()
    assert "model.int8.onnx" not in manifest["files"]
    refused = _json(directory / "equivalence.json")["variants"]["onnx-int8"]
    assert refused["refused"] and refused["accuracy_check"]["within_thresholds"] is False

    predict = run_cli("predict", "mnist-mlp", "0", "--variant", "int8", "--artifacts-dir", str(root))
    assert predict.returncode == 2 and "refused at export" in predict.stderr and "Traceback" not in predict.stderr
    verify = run_cli("verify", "mnist-mlp", "--json", "--artifacts-dir", str(root))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert {r["format"] for r in json.loads(verify.stdout)["checks"]} == set(manifest["formats"])


def test_verify_rechecks_every_format_and_variant_from_the_files(zoo: Zoo) -> None:
    root = zoo.exported("mnist-mlp")
    result = run_cli("verify", "mnist-mlp", "--json", "--artifacts-dir", str(root))
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {r["format"]: r for r in json.loads(result.stdout)["checks"]}
    assert set(rows) == {"state_dict", "torchscript", "pt2", "onnx", "onnx-int8", "onnx-fp16"}
    assert all(r["passed"] and not r.get("refused") for r in rows.values())
    assert rows["onnx-int8"]["heldout_top1_agreement"] >= 0.99

    # the same files under thresholds no variant can meet: verify re-ran the accuracy check, and fails
    strict = subprocess.run(
        [sys.executable, "-c", STRICT, "verify", "mnist-mlp", "--json", "--artifacts-dir", str(root)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=cli_env(),
    )
    assert strict.returncode == 1, strict.stdout + strict.stderr
    failed = {r["format"]: r for r in json.loads(strict.stdout)["checks"] if not r["passed"]}
    assert set(failed) == {"onnx-int8", "onnx-fp16"}
    assert "no longer within its thresholds" in failed["onnx-int8"]["failures"][0]
