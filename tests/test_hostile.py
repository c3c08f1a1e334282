"""An artifact is untrusted input: hostile manifests (re-sealed, so only their content is wrong), links and
special files, graphs that are not self-contained or not valid, outputs that are not answers, and hostile
inputs are all refused with exit 2 (one line, no traceback, no hang) or an ArtifactError/UserInputError
through the API, and nothing is written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from torchzoo.core import artifact
from torchzoo.core.errors import ArtifactError, OutputError, UserInputError
from torchzoo.core.image_codec import image_params, load_image
from torchzoo.core.text_codec import printable
from torchzoo.serve_cli.predictor import Predictor
from torchzoo.serve_cli.preprocess import preprocess

from support import Zoo, run_cli

TIMEOUT = 60
WINE_ROW = "13.2,1.78,2.14,11.2,100,2.65,2.76,0.26,1.28,4.38,1.05,3.4,1050"


def _refused(result: subprocess.CompletedProcess, says: str = "") -> str:
    """Exit 2, exactly one line on stderr that is the error, no traceback; returns that line."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("torchzoo: error:")]
    assert len(errors) == 1, result.stderr
    assert "internal error" not in errors[0]
    assert says in errors[0], errors[0]
    assert "\x1b" not in result.stderr  # no terminal control sequence reaches the terminal
    return errors[0]


def _predict(directory: Path, *inputs: str) -> subprocess.CompletedProcess:
    return run_cli("predict", str(directory), *inputs, timeout=TIMEOUT)


def _snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    """Names, sizes and mtimes: proof that a refused run wrote nothing."""
    return {p.name: (p.lstat().st_size, p.lstat().st_mtime_ns) for p in directory.iterdir()}


def _copy(zoo: Zoo, name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(zoo.exported(name) / name, target)
    return target


def _reseal(directory: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """Edit the manifest and seal it again: only its content is wrong, never its sha256."""
    path = directory / artifact.MANIFEST
    manifest = json.loads(path.read_text())
    manifest.pop(artifact.SELF_HASH)
    edit(manifest)
    path.write_text(json.dumps(artifact.seal_manifest(manifest)))


def _rehash(directory: Path, filename: str) -> None:
    """Record a changed file's new sha256 and size in the manifest (an attacker can)."""

    def edit(manifest: dict[str, Any]) -> None:
        path = directory / filename
        manifest["files"][filename] = {"sha256": artifact.sha256_file(path), "bytes": path.stat().st_size}

    _reseal(directory, edit)


# --- a small artifact built from an ONNX graph made here (no training) ---------------------------------


def _graph(nodes: list[Any], initializers: list[Any] = (), width: int = 2, domains: list[Any] = ()) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "toy",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", width])],
        initializer=list(initializers),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), *domains])
    model.ir_version = 10
    return model


def _toy(directory: Path, graph: onnx.ModelProto | bytes, task: str = "classification", transform: str = "softmax"):
    """An artifact directory of a 2-feature model whose first output has width 2 (binary: width 1)."""
    directory.mkdir()
    data = graph if isinstance(graph, bytes) else graph.SerializeToString()
    (directory / artifact.ONNX).write_bytes(data)
    width = 1 if task == "binary" else 2
    manifest = {
        "schema_version": artifact.SCHEMA_VERSION,
        "model": "toy",
        "task": task,
        "labels": ["no", "yes"] if task in ("binary", "classification") else [],
        "inputs": [{"name": "x", "shape": ["batch", 2], "dtype": "float32"}],
        "outputs": [{"name": "y", "shape": ["batch", width], "dtype": "float32"}],
        "preprocessing": {"kind": "features", "n_features": 2, "feature_names": ["a", "b"], "dtype": "float32"},
        "postprocessing": {"output": "y", "transform": transform},
        "files": {artifact.ONNX: {"sha256": artifact.sha256_file(directory / artifact.ONNX), "bytes": len(data)}},
    }
    (directory / artifact.MANIFEST).write_text(json.dumps(artifact.seal_manifest(manifest)))
    return directory


IDENTITY = _graph([helper.make_node("Identity", ["x"], ["y"])])


def test_a_toy_artifact_predicts(tmp_path: Path) -> None:
    """The builder makes a valid artifact, so every refusal below is about the one thing changed."""
    directory = _toy(tmp_path / "toy", IDENTITY)
    result = run_cli("predict", str(directory), "1,3", "--json", timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    top = json.loads(result.stdout)["results"][0]["top"]
    assert top[0]["label"] == "yes" and top[0]["probability"] == pytest.approx(1 / (1 + np.exp(-2)), abs=1e-6)


# --- hostile manifests, re-sealed -------------------------------------------------------------------------


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(manifest: dict[str, Any]) -> None:
        *parents, last = path.split("|" if "|" in path else ".")
        node: Any = manifest
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[int(last) if isinstance(node, list) else last] = value

    return edit


NAMES_CASES = [
    ("preprocessing.alphabet", "aabcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .,;'", "duplicate letters"),
    ("preprocessing.alphabet", "abc\x1b[31m", "preprocessing.alphabet"),
    ("preprocessing.max_length", "64", "preprocessing.max_length"),
    ("preprocessing.max_length", 10**9, "preprocessing.max_length"),
    ("preprocessing.kind", "pickle", "preprocessing"),
    ("postprocessing.transform", "eval", "postprocessing.transform"),
    ("task", "ranking", "task"),
    ("labels", ["Arabic", "Chinese"], "labels"),
    ("labels", ["x"] * 18, "duplicate labels"),
    ("labels", 18, "labels"),
    ("inputs.0.shape", ["batch", "seq", 58], "inputs.0"),
    ("inputs.0.dtype", "float16", "inputs.0.dtype"),
    ("outputs.0.shape", ["batch", 17], "labels"),
    ("files|model.onnx|bytes", -1, "files.model.onnx.bytes"),
    ("files|model.onnx|sha256", "0" * 63, "files.model.onnx.sha256"),
    ("metrics.val_acc", float("nan"), "metrics.val_acc"),
    ("model", "../../etc", "model"),
]


@pytest.mark.parametrize(("field", "value", "says"), NAMES_CASES, ids=[f"{c[0]}={str(c[1])[:12]}" for c in NAMES_CASES])
def test_hostile_names_manifest_is_refused_naming_the_field(zoo: Zoo, tmp_path: Path, field, value, says) -> None:
    directory = _copy(zoo, "names", tmp_path)
    _reseal(directory, _set(field, value))
    before = _snapshot(directory)
    line = _refused(_predict(directory, "Rossi"), says)
    assert "manifest.json" in line
    assert _snapshot(directory) == before


WINE_CASES = [
    ("preprocessing.std.0", 0.0, "preprocessing.std.0"),
    ("preprocessing.mean.3", 1e999, "preprocessing.mean.3"),  # json writes Infinity
    ("preprocessing.mean", [1.0, 2.0], "preprocessing.mean/std"),
    ("preprocessing.n_features", 12, "preprocessing.feature_names"),
    ("preprocessing.dtype", "object", "preprocessing.dtype"),
    ("inputs.0.name", "other", "inputs"),  # agrees with the schema, not with the graph
    ("outputs.0.name", "probs", "postprocessing.output"),
]


@pytest.mark.parametrize(("field", "value", "says"), WINE_CASES, ids=[c[0] for c in WINE_CASES])
def test_hostile_wine_manifest_is_refused_naming_the_field(zoo: Zoo, tmp_path: Path, field, value, says) -> None:
    directory = _copy(zoo, "wine", tmp_path)
    _reseal(directory, _set(field, value))
    _refused(_predict(directory, WINE_ROW), says)


def test_specs_disagreeing_with_the_graph_are_refused(tmp_path: Path) -> None:
    """Schema-valid manifests whose inputs/outputs are not the graph's: refused right after the session is made."""
    cases = [
        (_set("inputs.0.name", "z"), "inputs"),
        (_set("outputs.0.name", "w"), "outputs"),
    ]
    for index, (edit, says) in enumerate(cases):
        directory = _toy(tmp_path / f"toy{index}", IDENTITY)

        def both(manifest: dict[str, Any], edit: Callable = edit) -> None:
            edit(manifest)
            manifest["postprocessing"]["output"] = manifest["outputs"][0]["name"]

        _reseal(directory, both)
        with pytest.raises(ArtifactError, match=says):
            Predictor(directory, "cpu")
    # the graph takes float64 while the manifest says float32
    graph = _graph([helper.make_node("Identity", ["x"], ["y"])])
    graph.graph.input[0].type.tensor_type.elem_type = TensorProto.DOUBLE
    graph.graph.output[0].type.tensor_type.elem_type = TensorProto.DOUBLE
    _refused(_predict(_toy(tmp_path / "double", graph), "1,2"), "inputs.0.dtype")
    # the graph's output has width 3, the manifest's 2 labels say 2
    wide = _graph(
        [helper.make_node("Concat", ["x", "x"], ["c"], axis=1), helper.make_node("Slice", ["c", "s", "e", "a"], ["y"])],
        [numpy_helper.from_array(np.array([v]), n) for v, n in ((0, "s"), (3, "e"), (1, "a"))],
        width=3,
    )
    _refused(_predict(_toy(tmp_path / "wide", wide), "1,2"), "outputs.0.shape")


def test_old_or_unknown_schema_versions_are_refused(zoo: Zoo, tmp_path: Path) -> None:
    directory = _copy(zoo, "names", tmp_path)
    for version in (0, 2, "1", None, True, 1.0):
        _reseal(directory, _set("schema_version", version))
        _refused(_predict(directory, "Rossi"), "re-export")


def test_huge_or_deep_manifests_are_refused(zoo: Zoo, tmp_path: Path) -> None:
    directory = _copy(zoo, "names", tmp_path)
    (directory / artifact.MANIFEST).write_text("[" * 100_000 + "]" * 100_000)
    _refused(_predict(directory, "Rossi"), "manifest.json")
    (directory / artifact.MANIFEST).write_bytes(b" " * (2 << 20))
    _refused(_predict(directory, "Rossi"), "at most")


# --- links and special files --------------------------------------------------------------------------


def test_links_and_special_files_in_an_artifact_are_refused(zoo: Zoo, tmp_path: Path) -> None:
    source = _copy(zoo, "names", tmp_path)
    outside = tmp_path / "outside.onnx"
    shutil.copy(source / artifact.ONNX, outside)

    link = _copy_dir(source, tmp_path / "link")
    (link / artifact.ONNX).unlink()
    (link / artifact.ONNX).symlink_to(outside)  # same bytes, but outside the artifact
    _refused(_predict(link, "Rossi"), "symbolic link leading outside")

    fifo = _copy_dir(source, tmp_path / "fifo")
    (fifo / artifact.ONNX).unlink()
    os.mkfifo(fifo / artifact.ONNX)
    _refused(_predict(fifo, "Rossi"), "a FIFO")

    folder = _copy_dir(source, tmp_path / "folder")
    (folder / artifact.ONNX).unlink()
    (folder / artifact.ONNX).mkdir()
    _refused(_predict(folder, "Rossi"), "a directory")

    manifest_fifo = _copy_dir(source, tmp_path / "manifest_fifo")
    (manifest_fifo / artifact.MANIFEST).unlink()
    os.mkfifo(manifest_fifo / artifact.MANIFEST)
    _refused(_predict(manifest_fifo, "Rossi"), "a FIFO")

    manifest_link = _copy_dir(source, tmp_path / "manifest_link")
    (manifest_link / artifact.MANIFEST).unlink()
    (manifest_link / artifact.MANIFEST).symlink_to("/dev/zero")
    _refused(_predict(manifest_link, "Rossi"), "symbolic link leading outside")


def test_paths_in_the_manifest_are_plain_names(zoo: Zoo, tmp_path: Path) -> None:
    directory = _copy(zoo, "names", tmp_path)
    entry = json.loads((directory / artifact.MANIFEST).read_text())["files"][artifact.ONNX]
    for name in ("../names/model.onnx", "/etc/passwd", "sub/model.onnx", ".hidden"):
        _reseal(directory, lambda m, name=name: m["files"].__setitem__(name, entry))
        _refused(_predict(directory, "Rossi"), "files")


def test_verify_follows_the_same_rules(zoo: Zoo, tmp_path: Path) -> None:
    root = tmp_path / "root"
    directory = _copy(zoo, "names", root)
    (directory / artifact.EQUIVALENCE).unlink()
    os.mkfifo(directory / artifact.EQUIVALENCE)
    result = run_cli("verify", "names", "--artifacts-dir", str(root), "--json", timeout=TIMEOUT)
    assert result.returncode != 0 and "a FIFO" in result.stdout and "Traceback" not in result.stderr
    (directory / artifact.EQUIVALENCE).unlink()
    (directory / artifact.EQUIVALENCE).symlink_to("/etc/hostname")
    result = run_cli("verify", "names", "--artifacts-dir", str(root), "--json", timeout=TIMEOUT)
    assert result.returncode != 0 and "symbolic link leading outside" in result.stdout


def _copy_dir(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


# --- graphs: external data, unknown domains, garbage, unknown ops -------------------------------------


def _external_graph(location: str) -> onnx.ModelProto:
    weight = numpy_helper.from_array(np.ones(2, np.float32), "w")
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    entry = weight.external_data.add()
    entry.key, entry.value = "location", location
    return _graph([helper.make_node("Add", ["x", "w"], ["y"])], [weight])


def test_graphs_with_external_data_are_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.ones(2, np.float32).tobytes())
    for index, location in enumerate([str(secret), "../secret.bin", "weights.bin"]):
        directory = _toy(tmp_path / f"toy{index}", _external_graph(location))
        (directory / "weights.bin").write_bytes(secret.read_bytes())
        _refused(_predict(directory, "1,2"), "external data")
    # external data inside a subgraph (an If branch) is found too
    branch = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])],
        "then",
        [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[_external_graph("x.bin").graph.initializer[0]],
    )
    cond = numpy_helper.from_array(np.array(True), "c")
    nested = _graph([helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=branch)], [cond])
    with pytest.raises(ArtifactError, match="external data"):
        Predictor(_toy(tmp_path / "nested", nested), "cpu")


def test_graphs_with_unknown_domains_are_refused(tmp_path: Path) -> None:
    custom = _graph(
        [helper.make_node("Evil", ["x"], ["y"], domain="com.example")], domains=[helper.make_opsetid("com.example", 1)]
    )
    _refused(_predict(_toy(tmp_path / "custom", custom), "1,2"), "com.example")
    contrib = _graph(
        [helper.make_node("Gelu", ["x"], ["y"], domain="com.microsoft")],
        domains=[helper.make_opsetid("com.microsoft", 1)],
    )
    _refused(_predict(_toy(tmp_path / "contrib", contrib), "1,2"), "com.microsoft")
    imported = _graph([helper.make_node("Identity", ["x"], ["y"])], domains=[helper.make_opsetid("org.plugin", 1)])
    with pytest.raises(ArtifactError, match=r"org\.plugin"):
        Predictor(_toy(tmp_path / "imported", imported), "cpu")


def test_garbage_and_unknown_op_graphs_are_refused(tmp_path: Path) -> None:
    cases = [
        (b"\x00\xffgarbage" * 50, "not an ONNX graph"),
        (b"", "not an ONNX graph"),
        (_graph([helper.make_node("NoSuchOp", ["x"], ["y"])]), "onnxruntime cannot load"),
        (_graph([helper.make_node("Add", ["x"], ["y"])]), "onnxruntime cannot load"),  # wrong arity
        (
            _graph([helper.make_node("Cast", ["x"], ["y"], to=TensorProto.INT64)]),
            "onnxruntime cannot load",
        ),  # type mismatch
    ]
    for index, (graph, says) in enumerate(cases):
        line = _refused(_predict(_toy(tmp_path / f"toy{index}", graph), "1,2"), says)
        assert f"toy{index}" in line  # names the artifact


# --- outputs that are not answers ---------------------------------------------------------------------


def _times(value: float, task: str = "classification", width: int = 2) -> onnx.ModelProto:
    constant = numpy_helper.from_array(np.array([value], np.float32), "k")
    return _graph([helper.make_node("Mul", ["x", "k"], ["y"])], [constant], width=width)


def test_non_finite_outputs_are_errors(tmp_path: Path) -> None:
    nan = _toy(tmp_path / "nan", _times(float("nan")))
    result = run_cli("predict", str(nan), "1,2", "--json", timeout=TIMEOUT)
    assert result.returncode == 2
    error = json.loads(result.stdout)  # valid JSON, and an error, not an answer
    assert error["exit_code"] == 2 and "NaN or infinity" in error["error"]
    _refused(_predict(_toy(tmp_path / "inf", _times(float("inf"))), "1,2"), "NaN or infinity")
    regression = _toy(tmp_path / "reg", _times(1e38), task="regression", transform="identity")
    _refused(_predict(regression, "1e10,1"), "NaN or infinity")  # float32 overflow to inf
    predictor = Predictor(nan, "cpu")
    with pytest.raises(OutputError):
        predictor.predict(["1,2"])
    with pytest.raises(OutputError):  # raw outputs too (what a server returns): never NaN
        predictor.run([np.ones((1, 2), np.float32)])
    for arrays in ([np.ones((1, 3), np.float32)], [np.ones((1, 2), np.float64)], ["1,2"], []):
        with pytest.raises(UserInputError, match="model takes"):
            predictor.run(arrays)


def test_probabilities_outside_0_1_are_errors(tmp_path: Path) -> None:
    binary = _toy(
        tmp_path / "binary",
        _graph(
            [helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=1)],
            [numpy_helper.from_array(np.array([1], np.int64), "axes")],
            width=1,
        ),
        task="binary",
        transform="identity",
    )
    _refused(_predict(binary, "0.5,0.75"), "outside [0, 1]")  # p = 1.25
    _refused(_predict(binary, "0.25,-0.5"), "outside [0, 1]")  # p = -0.25
    assert json.loads(run_cli("predict", str(binary), "0.25,0.5", "--json", timeout=TIMEOUT).stdout)["results"][0][
        "probability"
    ] == pytest.approx(0.75)
    logprobs = _toy(tmp_path / "exp", IDENTITY, transform="exp")  # exp of "log-probabilities" above 0
    with pytest.raises(OutputError, match=r"outside \[0, 1\]"):
        Predictor(logprobs, "cpu").predict(["0.5,0.1"])


# --- hostile inputs -----------------------------------------------------------------------------------

GREY = image_params("L", (28, 28), [0.5], [0.5], "test")
GREY_SPECS = [{"name": "image", "shape": ["batch", 1, 28, 28]}]
FEATURES = {
    "kind": "features",
    "n_features": 2,
    "feature_names": ["a", "b"],
    "mean": None,
    "std": None,
    "dtype": "float32",
}
FEATURE_SPECS = [{"name": "x", "shape": ["batch", 2]}]


def test_special_files_as_inputs_are_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "digit.png"
    os.mkfifo(fifo)
    csv_fifo = tmp_path / "rows.csv"
    os.mkfifo(csv_fifo)
    for path, says in ((fifo, "a FIFO"), (Path("/dev/zero"), "a device"), (tmp_path, "a directory")):
        with pytest.raises(UserInputError, match=says):
            load_image(path, GREY)
    with pytest.raises(UserInputError, match="a FIFO"):
        preprocess([str(csv_fifo)], FEATURES, FEATURE_SPECS)
    npy_fifo = tmp_path / "batch.npy"
    os.mkfifo(npy_fifo)
    with pytest.raises(UserInputError, match="a FIFO"):
        preprocess([str(npy_fifo)], GREY, GREY_SPECS)
    _refused(_predict(_toy(tmp_path / "toy", IDENTITY), str(csv_fifo)), "a FIFO")


def test_images_are_only_png_or_jpeg(tmp_path: Path) -> None:
    from PIL import Image

    for fmt in ("TIFF", "BMP", "GIF", "PPM", "WEBP"):
        path = tmp_path / f"digit.{fmt.lower()}"
        Image.new("L", (28, 28)).save(path, format=fmt)
        with pytest.raises(UserInputError, match="not a PNG or JPEG"):
            load_image(path, GREY)
    eps = tmp_path / "evil.png"  # an EPS (Pillow would hand it to Ghostscript) named .png
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\nshowpage\n")
    with pytest.raises(UserInputError, match="not a PNG or JPEG"):
        load_image(eps, GREY)
    truncated = tmp_path / "cut.png"
    Image.new("L", (300, 300), 7).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(UserInputError):
        load_image(truncated, GREY)


def test_hostile_npy_inputs_are_refused(tmp_path: Path) -> None:
    header_lies = tmp_path / "lies.npy"
    with open(header_lies, "wb") as fh:  # a header claiming 10^12 bytes over 10 bytes of data
        np.lib.format.write_array_header_1_0(fh, {"descr": "|u1", "fortran_order": False, "shape": (10**6, 1000, 1000)})
        fh.write(b"\x00" * 10)
    pickled = tmp_path / "objects.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    garbage = tmp_path / "garbage.npy"
    garbage.write_bytes(b"\x93NUMPY\x01\x00" + b"{" * 300)
    for path, says in (
        (header_lies, "header describes"),
        (pickled, "uint8 pixels or float32"),
        (garbage, "not a readable"),
    ):
        with pytest.raises(UserInputError, match=says):
            preprocess([str(path)], GREY, GREY_SPECS)
    good = tmp_path / "good.npy"
    np.save(good, np.zeros((2, 28, 28), np.uint8))
    (batch,), sources = preprocess([str(good)], GREY, GREY_SPECS)
    assert batch.shape == (2, 1, 28, 28) and sources == [f"{good}[0]", f"{good}[1]"]


def test_hostile_csv_inputs_are_read_right_or_refused(tmp_path: Path) -> None:
    bom = tmp_path / "bom.csv"
    bom.write_bytes("\ufeffa,b\n1,2\n3,4\n".encode())
    (rows,), _ = preprocess([str(bom)], FEATURES, FEATURE_SPECS)
    assert rows.tolist() == [[1, 2], [3, 4]]
    bom_no_header = tmp_path / "bom_rows.csv"
    bom_no_header.write_bytes("\ufeff1,2\n3,4\n".encode())  # the first row is data, not a header
    (rows,), sources = preprocess([str(bom_no_header)], FEATURES, FEATURE_SPECS)
    assert rows.tolist() == [[1, 2], [3, 4]] and len(sources) == 2
    cases = [
        ("1,abc\n3,4\n", "row 1"),  # a bad first row is an error, never taken for a header and dropped
        ("a,b\n1,2\n3\n", "row 2"),
        ("1,nan\n", "not a finite number"),
        ("1," + "9" * 5000 + "\n", "not a number"),
        ("1,2\n" * 100_002, "rows"),
        ("\xff\xfe1,2", "not a readable UTF-8"),
    ]
    for index, (text, says) in enumerate(cases):
        path = tmp_path / f"bad{index}.csv"
        path.write_bytes(text.encode("latin-1") if index == 5 else text.encode())
        with pytest.raises(UserInputError, match=says):
            preprocess([str(path)], FEATURES, FEATURE_SPECS)


def test_hostile_names_and_file_names_are_bounded_and_escaped(tmp_path: Path) -> None:
    names = {
        "kind": "names_one_hot",
        "alphabet": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .,;'",
        "max_length": 64,
    }
    specs = [{"name": "letters", "shape": ["batch", "seq", 57]}]
    for bad, says in (
        ("a" * 10**7, "at most 1,024"),
        ("Ro\x1b[31mssi", "does not know"),
        ("[bold]Rossi[/bold]", "does not know"),
    ):
        with pytest.raises(UserInputError, match=says) as info:
            preprocess([bad], names, specs)
        assert "\x1b" not in str(info.value) and len(str(info.value)) < 300
    with pytest.raises(UserInputError, match="inputs in one call"):
        preprocess(["Rossi"] * 10_001, names, specs)
    evil = tmp_path / "evil\x1b]0;owned\x07\x1b[2J.png"
    evil.write_bytes(b"not an image")
    result = _predict(_toy(tmp_path / "toy", IDENTITY), str(evil).replace(".png", ".csv"))
    _refused(result)
    with pytest.raises(UserInputError) as info:
        load_image(evil, GREY)
    assert "\x1b" not in str(info.value) and "\\x1b" in str(info.value)
    assert printable("a\x1b[2J\u202eb") == "a\\x1b[2J\\u202eb"


def test_a_manifest_cannot_raise_the_runtime_limits(zoo: Zoo, tmp_path: Path) -> None:
    directory = _copy(zoo, "names", tmp_path)
    _reseal(directory, _set("preprocessing.max_length", 100_000))
    _refused(_predict(directory, "Rossi"), "preprocessing.max_length")
    wine = _copy(zoo, "wine", tmp_path)
    _reseal(wine, _set("preprocessing.n_features", 10**7))
    _refused(_predict(wine, WINE_ROW), "preprocessing.n_features")


# --- any re-sealed edit of a manifest: an answer or a refusal, never a crash ------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_resealed_manifest_edit_is_answered_or_refused(tmp_path_factory: pytest.TempPathFactory, data) -> None:
    directory = _toy(tmp_path_factory.mktemp("fuzz") / "toy", IDENTITY)
    manifest = json.loads((directory / artifact.MANIFEST).read_text())
    manifest.pop(artifact.SELF_HASH)
    path = data.draw(st.sampled_from(_paths(manifest)))
    value = data.draw(_JSON)
    node: Any = manifest
    for key in path[:-1]:
        node = node[key]
    if data.draw(st.booleans()) or not isinstance(node, dict):
        node[path[-1]] = value
    else:
        del node[path[-1]]
    (directory / artifact.MANIFEST).write_text(json.dumps(artifact.seal_manifest(manifest)))
    try:
        results = Predictor(directory, "cpu").predict(["1,3"])
    except (ArtifactError, UserInputError) as exc:
        assert exc.exit_code == 2 and "\n" not in str(exc) and len(str(exc)) < 1000
        return
    assert all(0.0 <= t["probability"] <= 1.0 for r in results for t in r.get("top", [])), results
    json.dumps(results, allow_nan=False)  # an answer is always valid JSON
