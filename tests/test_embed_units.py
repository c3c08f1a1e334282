"""``torchzoo embed``'s bundle, from a small artifact made here (no training; tests/test_js_client.py runs real
bundles in Node and Chromium, in the slow lane): what it holds, byte for byte, and what it refuses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from onnx import TensorProto, helper

from torchzoo import embed, js_client
from torchzoo.core import artifact
from torchzoo.core.errors import ArtifactError, UserInputError
from torchzoo.core.tensor_spec import dim_bounds


def _toy(directory: Path, equivalence: str = "passed") -> Path:
    """A 2-feature artifact (an Identity graph) whose ONNX format has the given equivalence result."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "toy",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    directory.mkdir()
    data = model.SerializeToString()
    (directory / artifact.ONNX).write_bytes(data)
    manifest = {
        "schema_version": artifact.SCHEMA_VERSION,
        "model": "toy",
        "task": "classification",
        "labels": ["no", "yes"],
        "inputs": [{"name": "x", "shape": ["batch", 2], "dtype": "float32"}],
        "outputs": [{"name": "y", "shape": ["batch", 2], "dtype": "float32"}],
        "preprocessing": {"kind": "features", "n_features": 2, "feature_names": ["a", "b"], "dtype": "float32"},
        "postprocessing": {"output": "y", "transform": "softmax"},
        "formats": {"onnx": {"equivalence": equivalence}},
        "files": {artifact.ONNX: {"sha256": artifact.sha256_file(directory / artifact.ONNX), "bytes": len(data)}},
    }
    (directory / artifact.MANIFEST).write_text(json.dumps(artifact.seal_manifest(manifest)))
    return directory


def test_the_bundle_holds_the_artifact_byte_for_byte_and_the_shipped_client(tmp_path: Path) -> None:
    directory = _toy(tmp_path / "toy")
    out = tmp_path / "bundle"
    written = embed.write_bundle(directory, out)
    assert [p.name for p in written] == list(embed.BUNDLE_FILES)
    assert sorted(p.name for p in out.iterdir()) == sorted(embed.BUNDLE_FILES)
    for name in (artifact.ONNX, artifact.MANIFEST):
        assert (out / name).read_bytes() == (directory / name).read_bytes()
    assert (out / embed.CLIENT_FILE).read_bytes() == js_client.resource(js_client.CLIENT).read_bytes()
    assert (out / "index.html").read_bytes() == js_client.resource(js_client.PAGE).read_bytes()
    package = json.loads((out / "package.json").read_text())
    assert package["name"] == "torchzoo-toy" and package["type"] == "module"
    assert package["dependencies"] == {"onnxruntime-node": embed.ORT_VERSION, "onnxruntime-web": embed.ORT_VERSION}
    readme = (out / "README.md").read_text()
    assert readme.startswith("# toy for JavaScript") and "rows of 2 numbers (a, b)" in readme
    assert 'model.predict(["0,0"]' in readme  # the example input is one row of this model's width


def test_the_shipped_client_and_page_are_package_resources() -> None:
    client = js_client.resource(js_client.CLIENT).read_text()
    assert "export" in client and "loadArtifact" in client
    assert "<html" in js_client.resource(js_client.PAGE).read_text().lower()


@pytest.mark.parametrize(
    ("preprocessing", "example"),
    [
        ({"kind": "names_one_hot"}, '"Rossi"'),
        ({"kind": "features", "n_features": 3}, '"0,0,0"'),
        ({"kind": "image", "mode": "L", "size": [28, 28]}, "new Uint8Array(784), shape: [1, 1, 28, 28]"),
        ({"kind": "image", "mode": "RGB", "size": [32, 32]}, "new Uint8Array(3072), shape: [1, 3, 32, 32]"),
    ],
)
def test_the_example_input_fits_the_model(preprocessing: dict[str, Any], example: str) -> None:
    assert example in embed.example_input({"preprocessing": preprocessing})


def _tensors_manifest(**origin: Any) -> dict[str, Any]:
    """A user's own model (preprocessing ``tensors``): int64 ids, a float32 mask and a bool flag."""
    return {
        "preprocessing": {"kind": "tensors"},
        "inputs": [
            {"name": "ids", "shape": ["batch", "seq"], "dtype": "int64"},
            {"name": "mask", "shape": ["batch", "seq"], "dtype": "float32"},
            {"name": "flag", "shape": ["batch", 2], "dtype": "bool"},
        ],
        "origin": origin,
    }


def test_the_example_of_a_tensors_model_names_each_input_with_its_typed_array() -> None:
    example = embed.example_input(_tensors_manifest(dim_bounds={"seq": [3, 32], "batch": [1, None]}))
    assert example == (
        '{ "ids": { data: new BigInt64Array(3), shape: [1, 3] }, "mask": { data: new Float32Array(3), '
        'shape: [1, 3] }, "flag": { data: new Uint8Array(2), shape: [1, 2] } }'
    )  # each named dim at its declared minimum
    assert "shape: [1, 1]" in embed.example_input(_tensors_manifest())  # none declared: 1


@pytest.mark.parametrize(
    ("declared", "bounds"),
    [
        ({"seq": [2, 24], "batch": [1, None]}, {"seq": (2, 24), "batch": (1, None)}),
        ({"seq": [0, 4], "x": "bad", "y": [3, 1]}, {"y": (3, None)}),  # below 1 or malformed: ignored
        ("not a table", {}),
    ],
)
def test_dim_bounds_read_what_a_manifest_declares(declared: Any, bounds: dict[str, Any]) -> None:
    assert dim_bounds({"origin": {"dim_bounds": declared}}) == bounds
    assert dim_bounds({}) == {}


def test_the_readme_of_a_tensors_model_lists_its_inputs_and_typed_arrays() -> None:
    manifest = {**_tensors_manifest(), "model": "mine"}
    text = embed.readme(manifest)
    assert "ids int64 ['batch', 'seq'] (BigInt64Array); mask float32 ['batch', 'seq'] (Float32Array)" in text
    assert "flag bool ['batch', 2] (Uint8Array)" in text
    assert 'model.predict([{ "ids": { data: new BigInt64Array(1)' in text


def test_an_onnx_graph_without_a_passed_check_is_refused(tmp_path: Path) -> None:
    directory = _toy(tmp_path / "toy", equivalence="failed")
    with pytest.raises(ArtifactError, match="no passed equivalence check; run 'torchzoo export toy'"):
        embed.write_bundle(directory, tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()


def test_a_graph_changed_after_export_is_refused(tmp_path: Path) -> None:
    directory = _toy(tmp_path / "toy")
    graph = directory / artifact.ONNX
    graph.write_bytes(graph.read_bytes() + b"\0")
    with pytest.raises(ArtifactError):
        embed.write_bundle(directory, tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()


def test_out_must_be_a_directory_other_than_the_artifact(tmp_path: Path) -> None:
    directory = _toy(tmp_path / "toy")
    (tmp_path / "file").write_text("")
    with pytest.raises(UserInputError, match="is a file, not a directory"):
        embed.write_bundle(directory, tmp_path / "file")
    with pytest.raises(UserInputError, match="must not be the artifact directory itself"):
        embed.write_bundle(directory, directory)


def test_example_inputs_stay_within_a_recorded_value_range() -> None:
    import numpy as np

    from torchzoo.core.tensor_spec import example_arrays

    manifest = {
        "inputs": [{"name": "ids", "shape": ["batch", "seq"], "dtype": "int64"}],
        "origin": {"dim_bounds": {"seq": [3, 8]}, "value_ranges": {"ids": [5, 9]}},
    }
    (ids,) = example_arrays(manifest, batch=2)
    assert ids.shape == (2, 3) and ids.dtype == np.int64 and (ids == 5).all()
    manifest["origin"]["value_ranges"] = {"ids": [0, 9]}
    assert (example_arrays(manifest, batch=1)[0] == 0).all()
