"""What the tool refuses: damaged artifacts, bad inputs (property-based), interrupted and concurrent writes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from torchzoo.core.errors import UserInputError
from torchzoo.core.image_codec import image_params
from torchzoo.core.text_codec import ALPHABET
from torchzoo.serve_cli.preprocess import preprocess

from support import ROOT, Zoo, cli_env, run_cli

NAMES_PARAMS = {"kind": "names_one_hot", "alphabet": ALPHABET, "max_length": 64}
NAMES_SPECS = [{"name": "letters", "shape": ["batch", "seq", 57]}]
GREY = image_params("L", (28, 28), [0.5], [0.5], "test")
GREY_SPECS = [{"name": "image", "shape": ["batch", 1, 28, 28]}]


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("torchzoo: error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def names_copy(zoo: Zoo, tmp_path: Path) -> Path:
    """A private copy of the exported names artifact root, safe to damage."""
    root = tmp_path / "artifacts"
    root.mkdir()
    shutil.copytree(zoo.exported("names") / "names", root / "names")
    return root


# --- damaged artifacts: refused before anything runs --------------------------------------------------


def test_edited_graph_is_refused(names_copy: Path) -> None:
    graph = names_copy / "names" / "model.onnx"
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))
    result = run_cli("predict", "names", "Rossi", "--artifacts-dir", str(names_copy))
    assert result.returncode == 2
    assert "does not match the sha256" in _one_error_line(result)


def test_truncated_graph_is_refused(names_copy: Path) -> None:
    graph = names_copy / "names" / "model.onnx"
    graph.write_bytes(graph.read_bytes()[:1000])
    result = run_cli("predict", "names", "Rossi", "--artifacts-dir", str(names_copy))
    assert result.returncode == 2 and "model.onnx" in _one_error_line(result)


def test_edited_manifest_is_refused(names_copy: Path) -> None:
    path = names_copy / "names" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["labels"][0], manifest["labels"][1] = manifest["labels"][1], manifest["labels"][0]
    path.write_text(json.dumps(manifest))
    result = run_cli("predict", "names", "Rossi", "--artifacts-dir", str(names_copy))
    assert result.returncode == 2 and "does not match its own sha256" in _one_error_line(result)


def test_unknown_schema_version_is_refused(names_copy: Path) -> None:
    from torchzoo.core.artifact import seal_manifest

    path = names_copy / "names" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["schema_version"] = 99
    path.write_text(json.dumps(seal_manifest(manifest)))
    result = run_cli("predict", "names", "Rossi", "--artifacts-dir", str(names_copy))
    assert result.returncode == 2 and "schema version 99" in _one_error_line(result)


def test_manifest_that_is_not_json_is_refused(names_copy: Path) -> None:
    (names_copy / "names" / "manifest.json").write_text("{not json")
    result = run_cli("predict", "names", "Rossi", "--json", "--artifacts-dir", str(names_copy))
    assert result.returncode == 2
    assert "not valid JSON" in json.loads(result.stdout)["error"]  # --json errors are JSON


def test_state_dict_with_wrong_keys_is_refused(names_copy: Path) -> None:
    import torch

    state = torch.load(names_copy / "names" / "model.pt", weights_only=True)
    state["extra.weight"] = state.pop("i2h.weight")
    torch.save(state, names_copy / "names" / "model.pt")
    result = run_cli("export", "names", "--format", "onnx", "--artifacts-dir", str(names_copy))
    assert result.returncode == 2 and "cannot load" in _one_error_line(result)
    result = run_cli("verify", "names", "--artifacts-dir", str(names_copy))
    assert result.returncode == 2 and "model.pt does not match the sha256" in _one_error_line(result)


def test_state_dict_with_pickled_code_is_refused(names_copy: Path) -> None:
    """weights_only=True: a state_dict file carrying arbitrary objects is not unpickled."""
    import pickle

    with open(names_copy / "names" / "model.pt", "wb") as fh:
        pickle.dump({"i2h.weight": os.system}, fh)
    result = run_cli("export", "names", "--format", "onnx", "--artifacts-dir", str(names_copy))
    assert result.returncode == 2 and "cannot load" in _one_error_line(result)


def test_missing_artifact_names_the_command(tmp_path: Path) -> None:
    result = run_cli("predict", "names", "Rossi", "--artifacts-dir", str(tmp_path))
    assert result.returncode == 2
    assert "run 'torchzoo train names' then 'torchzoo export names'" in _one_error_line(result)
    result = run_cli("export", "names", "--artifacts-dir", str(tmp_path))
    assert result.returncode == 2 and "torchzoo train names" in _one_error_line(result)


# --- bad inputs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("", "no letters"),
        ("1234", "does not know"),
        ("😀", "does not know"),
        ("Иванов", "does not know"),
        ("x" * 1_000, "at most 64"),
        ("x" * 10_000, "at most 1,024"),  # bounded before folding, whatever the manifest allows
    ],
)
def test_bad_names_are_refused(names_copy: Path, bad: str, says: str) -> None:
    result = run_cli("predict", "names", bad, "--json", "--artifacts-dir", str(names_copy))
    assert result.returncode == 2
    error = json.loads(result.stdout)
    assert says in error["error"] and error["exit_code"] == 2


def test_accents_are_folded(names_copy: Path) -> None:
    result = run_cli("predict", "names", "Müller", "Nguyễn", "Gonçalves", "--json", "--artifacts-dir", str(names_copy))
    assert result.returncode == 0, result.stderr


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(max_size=80), min_size=1, max_size=4))
def test_any_string_is_encoded_or_refused(names: list[str]) -> None:
    try:
        (letters,), sources = preprocess(names, NAMES_PARAMS, NAMES_SPECS)
    except UserInputError:
        return
    assert letters.shape[0] == len(names) == len(sources)
    assert letters.dtype == np.float32 and 1 <= letters.shape[1] <= 64
    assert set(np.unique(letters)) <= {0.0, 1.0}
    assert np.all(letters.sum(axis=2) <= 1)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    hnp.arrays(
        dtype=st.sampled_from([np.uint8, np.float32, np.float64, np.int64, np.bool_]),
        shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=30),
    )
)
def test_any_array_is_an_image_batch_or_refused(array: np.ndarray) -> None:
    try:
        (batch,), sources = preprocess([array], GREY, GREY_SPECS)
    except UserInputError:
        return
    assert batch.dtype == np.float32 and batch.shape[1:] == (1, 28, 28)
    assert np.all(np.isfinite(batch)) and len(sources) == len(batch)


@settings(max_examples=100, deadline=None)
@given(hnp.arrays(np.float32, (2, 1, 28, 28), elements=st.floats(width=32, allow_nan=True, allow_infinity=True)))
def test_float_batches_with_nan_are_refused(array: np.ndarray) -> None:
    try:
        (batch,), _ = preprocess([array], GREY, GREY_SPECS)
    except UserInputError:
        assert not np.all(np.isfinite(array))
        return
    assert np.all(np.isfinite(batch))


# --- interrupted and concurrent writes ----------------------------------------------------------------


def _artifact_state(directory: Path) -> str:
    """'complete' when the directory is exactly what its manifest says (every file, right hashes)."""
    from torchzoo.core.artifact import read_manifest, verify_files

    manifest = read_manifest(directory)
    verify_files(directory, manifest)
    on_disk = {p.name for p in directory.iterdir()} - {"manifest.json"}
    assert on_disk == set(manifest["files"]), on_disk ^ set(manifest["files"])
    return manifest["manifest_sha256"]


def _start_export(root: Path) -> subprocess.Popen:
    """``torchzoo export names --format all`` in a background process."""
    command = [sys.executable, "-c", "from torchzoo.cli import main; main()", "export", "names", "--format", "all"]
    return subprocess.Popen(
        [*command, "--artifacts-dir", str(root)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=cli_env(),
    )


@pytest.mark.parametrize("delay", [0.5, 1.5, 2.5, 3.5, 5.0])
def test_sigkill_during_export_leaves_old_or_new_set(names_copy: Path, delay: float) -> None:
    directory = names_copy / "names"
    _artifact_state(directory)
    process = _start_export(names_copy)
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait()
    _artifact_state(directory)  # the old set or the new one: raises if the set is a mix or damaged
    result = run_cli("verify", "names", "--artifacts-dir", str(names_copy))
    assert result.returncode == 0, result.stdout
    # the next writer cleans what the killed one left in staging
    assert run_cli("export", "names", "--format", "onnx", "--artifacts-dir", str(names_copy)).returncode == 0
    assert not any((names_copy / ".staging").iterdir())


def test_concurrent_exports_do_not_corrupt(names_copy: Path) -> None:
    processes = [_start_export(names_copy) for _ in range(2)]
    assert all(p.wait() == 0 for p in processes)
    _artifact_state(names_copy / "names")
    assert run_cli("verify", "names", "--artifacts-dir", str(names_copy)).returncode == 0


def test_image_size_extremes(tmp_path: Path) -> None:
    """1x1 and 10000x10000 images are converted and resized; above 100 megapixels is refused before decoding."""
    from PIL import Image

    from torchzoo.core.image_codec import load_image

    Image.new("RGB", (1, 1), (255, 0, 0)).save(tmp_path / "tiny.png")
    assert load_image(tmp_path / "tiny.png", GREY).shape == (1, 28, 28)
    Image.new("L", (10_000, 10_000), 255).save(tmp_path / "huge.png")
    huge = load_image(tmp_path / "huge.png", GREY)
    assert huge.shape == (1, 28, 28) and huge.min() == 255
    Image.new("1", (10_001, 10_000)).save(tmp_path / "too_big.png")
    with pytest.raises(UserInputError, match="at most 100,000,000 pixels"):
        load_image(tmp_path / "too_big.png", GREY)


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16"])
def test_every_image_mode_is_converted(tmp_path: Path, mode: str) -> None:
    """Every mode a PNG or JPEG decodes to (the only formats the runtime opens; 16-bit PNG is I;16, CMYK a JPEG)."""
    from PIL import Image

    from torchzoo.core.image_codec import load_image

    path = tmp_path / ("image.jpg" if mode == "CMYK" else "image.png")
    Image.new(mode, (40, 30)).save(path)
    rgb = image_params("RGB", (32, 32), [0.5] * 3, [0.5] * 3, "test")
    assert load_image(path, GREY).shape == (1, 28, 28)
    assert load_image(path, rgb).shape == (3, 32, 32)
