"""``torchzoo export --format triton``: every config.pbtxt parsed back into Triton's own ``ModelConfig`` schema,
versions, refusals that write nothing, and a real ``tritonserver`` (2.51, from the nvidia-pytriton wheel) that
loads the unchanged repository and answers tritonclient as the runtime does (1e-6).

nvidia-pytriton ships the server and its Python backend but not the C++ onnxruntime backend, and needs
numpy<2, so it lives in its own virtual environment (``/.triton-venv/``, built once and kept). The test-only
backend ``tests/triton_backend/onnxruntime/model.py`` stands in for the C++ one under the same name, so the
``onnxruntime_onnx`` platform of the written configs loads as it is: this checks the repository, the config
and the protocol, not NVIDIA's onnxruntime backend itself.

A user's own models (tests/own_models, packaged with ``torchzoo.package``) go through the same path: the
int64 ids + float32 mask classifier with two outputs, and a TransformerEncoder (task ``tensor``) over a dynamic
sequence; their own tritonserver answers as the eager module does, within the artifact's tolerance.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime
import own_models
import pytest
import tritonclient.http as triton
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as pb
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

from torchzoo.cli.options import FORMAT_CHOICES
from torchzoo.core import artifact
from torchzoo.export import triton as triton_export
from torchzoo.export.exporter import resolve_formats
from torchzoo.export.triton import MAX_BATCH_SIZE, export_triton, model_config
from torchzoo.serve_cli import load
from torchzoo.train import registry

from serving import free_port, stop
from support import ROOT, Zoo, run_cli

#: one model per kind of input and output: variable-length names, images (grey, RGB), feature rows,
#: a float64 binary model and a regression model
MODELS = ("names", "mnist-mlp", "cifar10-cnn", "wine", "moons", "house-softexp")
CLASSIFIERS = {"names", "mnist-mlp", "cifar10-cnn", "wine"}
VENV = ROOT / ".triton-venv"
VENV_PACKAGES = ("nvidia-pytriton==0.7.0", "numpy<2", f"onnxruntime=={onnxruntime.__version__}")
BACKEND = ROOT / "tests" / "triton_backend" / "onnxruntime"
pytestmark = pytest.mark.slow


def _heldout(root: Path, model: str) -> np.ndarray:
    """The largest held-out input batch the export saved in the artifact."""
    cases = json.loads((root / model / artifact.EQUIVALENCE).read_text())["cases"]
    case = max((c for c in cases if c["kind"] == "heldout"), key=lambda c: c["input_shapes"][0][0])
    with np.load(root / model / artifact.CHECK_INPUTS) as npz:
        return npz[f"{case['name']}/0"]


def _parse(path: Path) -> pb.ModelConfig:
    return text_format.Parse(path.read_text(), pb.ModelConfig())  # an unknown field or value raises


@pytest.fixture(scope="module")
def repository(zoo: Zoo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every model of MODELS in one repository; names through the CLI, twice (versions 1 and 2)."""
    for name in MODELS:
        zoo.exported(name)
    repo = tmp_path_factory.mktemp("triton") / "repo"
    for name in MODELS[1:]:
        assert export_triton(registry.get(name), zoo.root, repo).version == 1
    for _ in range(2):
        result = run_cli(
            "export", "names", "--format", "triton", "--repository", str(repo), "--artifacts-dir", str(zoo.root)
        )
        assert result.returncode == 0, result.stderr + result.stdout
    return repo


def test_every_config_parses_into_tritons_model_config(repository: Path, zoo: Zoo) -> None:
    assert "triton" in FORMAT_CHOICES and "triton" not in resolve_formats("all")
    for name in MODELS:
        manifest = json.loads((zoo.root / name / artifact.MANIFEST).read_text())
        config = _parse(repository / name / "config.pbtxt")
        assert config.name == name and config.platform == "onnxruntime_onnx"
        assert config.max_batch_size == MAX_BATCH_SIZE
        kind = {"float32": pb.TYPE_FP32, "float64": pb.TYPE_FP64}
        for tensors, specs in ((config.input, manifest["inputs"]), (config.output, manifest["outputs"])):
            assert [(t.name, t.data_type) for t in tensors] == [(s["name"], kind[s["dtype"]]) for s in specs]
            assert [list(t.dims) for t in tensors] == [
                [d if isinstance(d, int) else -1 for d in s["shape"][1:]] for s in specs
            ]
        labels = repository / name / "labels.txt"
        if name in CLASSIFIERS:
            assert config.output[0].label_filename == "labels.txt"
            assert labels.read_text().splitlines() == manifest["labels"]
        else:
            assert not config.output[0].label_filename and not labels.exists()
        assert list(config.dynamic_batching.preferred_batch_size) == [16, 64]
        assert config.dynamic_batching.max_queue_delay_microseconds == 2000
        assert [(g.kind, g.count) for g in config.instance_group] == [(pb.ModelInstanceGroup.KIND_CPU, 1)]
        (warmup,) = config.model_warmup
        assert warmup.batch_size == 1 and set(warmup.inputs) == {s["name"] for s in manifest["inputs"]}
        for spec in manifest["inputs"]:
            given = warmup.inputs[spec["name"]]
            assert given.zero_data and given.data_type == kind[spec["dtype"]]
            assert list(given.dims) == [d if isinstance(d, int) else 1 for d in spec["shape"][1:]]
        source = (zoo.root / name / artifact.MANIFEST).read_bytes()
        assert (repository / name / artifact.MANIFEST).read_bytes() == source
        latest = repository / name / ("2" if name == "names" else "1")
        assert (latest / artifact.MANIFEST).read_bytes() == source
        assert (latest / artifact.ONNX).read_bytes() == (zoo.root / name / artifact.ONNX).read_bytes()
    assert {config.name for config in map(_parse, repository.glob("*/config.pbtxt"))} == set(MODELS)


def test_gpu_asks_for_gpu_instances(zoo: Zoo, tmp_path: Path) -> None:
    outcome = export_triton(registry.get("wine"), zoo.exported("wine"), tmp_path / "repo", gpu=True)
    assert (outcome.model, outcome.version, outcome.directory) == ("wine", 1, tmp_path / "repo" / "wine")
    config = _parse(outcome.directory / "config.pbtxt")
    assert [(g.kind, g.count) for g in config.instance_group] == [(pb.ModelInstanceGroup.KIND_GPU, 1)]


def test_a_second_export_adds_version_2(repository: Path, zoo: Zoo) -> None:
    model_dir = repository / "names"
    assert sorted(p.name for p in model_dir.iterdir() if p.is_dir()) == ["1", "2"]  # no staging left behind
    graph = (zoo.root / "names" / artifact.ONNX).read_bytes()
    assert (model_dir / "1" / artifact.ONNX).read_bytes() == graph == (model_dir / "2" / artifact.ONNX).read_bytes()


def _copy(zoo: Zoo, name: str, root: Path) -> Path:
    shutil.copytree(zoo.exported(name) / name, root / name)
    return root / name


def _reseal(directory: Path, edit) -> None:
    """Change the manifest and seal it again (a consistent artifact, so only the deeper checks can refuse it)."""
    manifest = json.loads((directory / artifact.MANIFEST).read_text())
    edit(manifest)
    manifest = artifact.seal_manifest({k: v for k, v in manifest.items() if k != artifact.SELF_HASH})
    (directory / artifact.MANIFEST).write_text(json.dumps(manifest, indent=2))


def _flip_a_byte(directory: Path) -> None:
    graph = directory / artifact.ONNX
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))


def _other_weights(directory: Path) -> None:
    """A valid graph whose weights differ from model.pt's, with its sha256 recorded: equivalence must refuse it."""
    import onnx
    from onnx import numpy_helper

    graph = directory / artifact.ONNX
    proto = onnx.load(str(graph))
    weight = max(proto.graph.initializer, key=lambda t: np.prod(t.dims))
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) * 1.5, weight.name))
    onnx.save(proto, str(graph))
    entry = {"sha256": artifact.sha256_file(graph), "bytes": graph.stat().st_size}
    _reseal(directory, lambda m: m["files"].__setitem__(artifact.ONNX, entry))


def _no_onnx(directory: Path) -> None:
    (directory / artifact.ONNX).unlink()

    def drop(manifest: dict) -> None:
        del manifest["files"][artifact.ONNX]
        manifest["formats"] = {k: v for k, v in manifest["formats"].items() if not k.startswith("onnx")}
        manifest["files"] = {k: v for k, v in manifest["files"].items() if not k.endswith(".onnx")}
        manifest.pop("variants", None)

    _reseal(directory, drop)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_flip_a_byte, "model.onnx does not match the sha256 in its manifest"),
        (_other_weights, "fails verification, not written to the repository: onnx: FAIL"),
        (_no_onnx, "has no model.onnx; run 'torchzoo export wine --format onnx'"),
    ],
)
def test_a_damaged_artifact_is_refused_and_nothing_is_written(
    repository: Path, zoo: Zoo, tmp_path: Path, damage, message: str
) -> None:
    root, repo = tmp_path / "artifacts", tmp_path / "repo"
    shutil.copytree(repository / "wine", repo / "wine")  # version 1 of the good artifact is there
    before = _files(repo)
    damage(_copy(zoo, "wine", root))
    result = run_cli("export", "wine", "--format", "triton", "--repository", str(repo), "--artifacts-dir", str(root))
    assert result.returncode == 2, result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr
    assert _files(repo) == before


def _files(repo: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(repo)): p.read_bytes() if p.is_file() else None for p in repo.rglob("*")}


def test_a_failure_while_writing_leaves_no_version(
    repository: Path, zoo: Zoo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(repository / "wine", repo / "wine")
    before = _files(repo)

    def crash(config: object) -> str:
        raise RuntimeError("disk full")

    monkeypatch.setattr(triton_export, "config_text", crash)  # after the version is staged, before its rename
    for name in ("wine", "moons"):  # an existing model keeps its versions; a new one leaves no directory
        with pytest.raises(RuntimeError, match="disk full"):
            triton_export.export_triton(registry.get(name), zoo.root, repo)
    assert _files(repo) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("export", "wine", "--format", "triton"), "--format triton needs --repository DIR"),
        (("export", "wine", "--format", "onnx", "--repository", "r"), "--repository and --gpu go with --format triton"),
        (("export", "wine", "--gpu"), "--repository and --gpu go with --format triton"),
        (("export", "wnie", "--format", "triton", "--repository", "r"), "did you mean 'wine'?"),
    ],
)
def test_bad_arguments_are_one_line_exit_2(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    result = run_cli(*args, "--artifacts-dir", str(tmp_path), timeout=120)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (ROOT / "r").exists()


# --- a real tritonserver -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def triton_venv() -> Path:
    """``/.triton-venv/``: nvidia-pytriton, numpy<2 and this environment's onnxruntime; built once, then kept
    (rebuilt when the package list changes). A lock file keeps two test runs from building it at once."""
    ready = VENV / ".torchzoo-ready"
    with open(ROOT / ".triton-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready.exists() or json.loads(ready.read_text()) != list(VENV_PACKAGES):
            shutil.rmtree(VENV, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=300)
            pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
            result = subprocess.run([*pip, *VENV_PACKAGES], capture_output=True, text=True, timeout=900)
            assert result.returncode == 0, result.stderr[-3000:]
            ready.write_text(json.dumps(list(VENV_PACKAGES)))
    return VENV


def _server_files(venv: Path, backends: Path) -> tuple[Path, dict[str, str]]:
    """The tritonserver binary, a backend directory (the wheel's Python backend and the stand-in named
    ``onnxruntime``) and the environment the server and its Python stubs need."""
    code = "import json, sys, sysconfig; print(json.dumps([sysconfig.get_paths()['purelib'], "
    code += "sysconfig.get_config_var('LIBDIR'), '%d.%d' % sys.version_info[:2]]))"
    query = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, timeout=60)
    site, libdir, version = json.loads(query.stdout)
    dist = Path(site) / "pytriton" / "tritonserver"
    (backends / "python").mkdir(parents=True)
    for file in (dist / "backends" / "python").glob("*"):
        if file.is_file():
            shutil.copy(file, backends / "python")
    shutil.copy(dist / "python_backend_stubs" / version / "triton_python_backend_stub", backends / "python")
    shutil.copytree(BACKEND, backends / "onnxruntime", ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["LD_LIBRARY_PATH"] = os.pathsep.join([str(Path(site) / "nvidia_pytriton.libs"), libdir])
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"  # the stubs' Python is the venv's
    env["VIRTUAL_ENV"] = str(venv)
    return dist / "bin" / "tritonserver", env


@contextlib.contextmanager
def tritonserver(repository: Path, venv: Path, workdir: Path, timeout: float = 240) -> Iterator[str]:
    binary, env = _server_files(venv, workdir / "backends")
    port = free_port()
    command = [str(binary), f"--model-repository={repository}", f"--backend-directory={workdir / 'backends'}"]
    command += ["--http-address=127.0.0.1", f"--http-port={port}", "--allow-grpc=false", "--allow-metrics=false"]
    command += ["--disable-auto-complete-config", "--exit-timeout-secs=10"]
    log = workdir / "tritonserver.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(f"tritonserver exited {process.returncode}: {log.read_text()[-4000:]}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=5) as r,
            ):
                if r.status == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"tritonserver not ready after {timeout} s: {log.read_text()[-4000:]}")
            time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        stop(process, grace=60, kill=lambda: os.killpg(process.pid, signal.SIGKILL))  # the server and its stubs


@pytest.fixture(scope="module")
def triton_url(repository: Path, triton_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with tritonserver(repository, triton_venv, tmp_path_factory.mktemp("tritonserver")) as url:
        yield url


@pytest.fixture
def client(triton_url: str) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(triton_url, network_timeout=60)


def _tensor(model: str, array: np.ndarray) -> triton.InferInput:
    name = registry.get(model).family.inputs[0].name
    tensor = triton.InferInput(name, list(array.shape), "FP64" if array.dtype == np.float64 else "FP32")
    tensor.set_data_from_numpy(array)
    return tensor


def _infer(client: triton.InferenceServerClient, model: str, array: np.ndarray, **kwargs) -> triton.InferResult:
    return client.infer(model, [_tensor(model, array)], **kwargs)


@pytest.mark.parametrize("model", MODELS)
def test_tritonserver_answers_as_the_runtime(client: triton.InferenceServerClient, zoo: Zoo, model: str) -> None:
    assert client.is_server_ready() and client.is_model_ready(model)
    predictor = load(zoo.root / model)
    array = _heldout(zoo.root, model)[:8]
    output = predictor.manifest["outputs"][0]["name"]
    got = _infer(client, model, array).as_numpy(output)
    np.testing.assert_allclose(got, predictor.run([array])[0], rtol=0, atol=1e-6)


def test_names_of_different_lengths_are_answered_by_the_newest_version(
    client: triton.InferenceServerClient, zoo: Zoo
) -> None:
    predictor = load(zoo.root / "names")
    for names in (["Rossi", "Nakamura"], ["Schmidt", "O'Neal", "Nguyen"], ["Li"]):
        letters = _encode(predictor, names)
        got = _infer(client, "names", letters).as_numpy("log_probs")
        np.testing.assert_allclose(got, predictor.run([letters])[0], rtol=0, atol=1e-6)
    metadata = client.get_model_metadata("names")
    assert metadata["versions"] == ["2"] and metadata["platform"] == "onnxruntime_onnx"
    assert metadata["inputs"] == [{"name": "letters", "datatype": "FP32", "shape": [-1, -1, 57]}]
    assert metadata["outputs"] == [{"name": "log_probs", "datatype": "FP32", "shape": [-1, 18]}]
    assert client.is_model_ready("names", "2") and not client.is_model_ready("names", "1")  # latest 1 served


def _encode(predictor, names: list[str]) -> np.ndarray:
    """One-hot letters from the manifest's alphabet (the names here need no folding)."""
    alphabet = predictor.manifest["preprocessing"]["alphabet"]
    letters = np.zeros((len(names), max(map(len, names)), len(alphabet)), np.float32)
    for row, name in enumerate(names):
        letters[row, range(len(name)), [alphabet.index(c) for c in name]] = 1
    return letters


def test_metadata_labels_and_the_batch_limit(client: triton.InferenceServerClient, zoo: Zoo) -> None:
    assert client.get_model_metadata("mnist-mlp")["inputs"][0]["shape"] == [-1, 1, 28, 28]
    assert client.get_model_metadata("moons")["inputs"] == [{"name": "points", "datatype": "FP64", "shape": [-1, 2]}]
    predictor = load(zoo.root / "mnist-mlp")
    images = _heldout(zoo.root, "mnist-mlp")[:4]
    top = _infer(client, "mnist-mlp", images, outputs=[triton.InferRequestedOutput("logits", class_count=3)])
    logits = predictor.run([images])[0]
    for row, entries in zip(logits, top.as_numpy("logits"), strict=True):  # "value:index:label", best first
        parts = [entry.decode().split(":") for entry in entries]
        assert [int(i) for _, i, _ in parts] == list(np.argsort(-row)[:3])
        assert [label for _, _, label in parts] == [predictor.labels[int(i)] for _, i, _ in parts]
        np.testing.assert_allclose([float(v) for v, _, _ in parts], np.sort(row)[::-1][:3], atol=1e-5)
    too_many = np.zeros((MAX_BATCH_SIZE + 1, 13), np.float32)
    with pytest.raises(InferenceServerException) as refused:
        _infer(client, "wine", too_many)
    assert refused.value.status() == "400" and "batch-size must be <= 64" in refused.value.message()


def test_concurrent_requests_are_batched_and_equal_unbatched(
    client: triton.InferenceServerClient, triton_url: str, zoo: Zoo
) -> None:
    """48 single-image requests at once (plain HTTP from threads: tritonclient.http's gevent client stays in
    one thread) run in fewer executions than requests, and each gets its own answer."""
    predictor = load(zoo.root / "mnist-mlp")
    images = _heldout(zoo.root, "mnist-mlp")[:48]
    start = threading.Barrier(len(images), timeout=60)
    url = f"http://{triton_url}/v2/models/mnist-mlp/infer"

    def one(i: int) -> np.ndarray:
        tensor = {"name": "image", "shape": [1, 1, 28, 28], "datatype": "FP32", "data": images[i].ravel().tolist()}
        request = urllib.request.Request(url, json.dumps({"inputs": [tensor]}).encode(), method="POST")
        start.wait()  # every request leaves at once
        with urllib.request.urlopen(request, timeout=60) as response:
            body = json.loads(response.read())
        return np.asarray(body["outputs"][0]["data"], np.float32)

    def stats() -> tuple[int, int]:
        (entry,) = client.get_inference_statistics("mnist-mlp")["model_stats"]
        return int(entry["inference_count"]), int(entry["execution_count"])

    before = stats()
    with concurrent.futures.ThreadPoolExecutor(len(images)) as pool:
        results = list(pool.map(one, range(len(images)), timeout=120))
    after = stats()
    for i, got in enumerate(results):
        np.testing.assert_allclose(got, predictor.run([images[i : i + 1]])[0][0], rtol=0, atol=1e-6)
    inferences, executions = after[0] - before[0], after[1] - before[1]
    assert inferences == 48 and executions < 48, (inferences, executions)  # fewer batches than requests


# --- a user's own models ----------------------------------------------------------------------------------

#: int64 ids + float32 mask -> class scores + token states (a classifier, two outputs); a TransformerEncoder
#: over a dynamic sequence whose declared minimum is 2 (task "tensor": raw outputs, no labels)
OWN_MODELS = ("tokens-mask", "encoder")


@pytest.fixture(scope="module")
def own_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("own") / "artifacts"
    for name in OWN_MODELS:
        own_models.package(name, root, formats="onnx")
    return root


@pytest.fixture(scope="module")
def own_repository(own_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both models through the CLI (the artifact directory's name, verified as a user's model)."""
    repo = tmp_path_factory.mktemp("own-triton") / "repo"
    for name in OWN_MODELS:
        result = run_cli(
            "export", name, "--format", "triton", "--repository", str(repo), "--artifacts-dir", str(own_root)
        )
        assert result.returncode == 0, result.stderr + result.stdout
    return repo


def test_a_users_models_configs_carry_every_tensor_and_dtype(own_repository: Path, own_root: Path) -> None:
    scores = _parse(own_repository / "tokens-mask" / "config.pbtxt")
    assert [(t.name, t.data_type, list(t.dims)) for t in scores.input] == [
        ("ids", pb.TYPE_INT64, [-1]),
        ("mask", pb.TYPE_FP32, [-1]),
    ]
    assert [(t.name, t.data_type, list(t.dims)) for t in scores.output] == [
        ("scores", pb.TYPE_FP32, [3]),
        ("states", pb.TYPE_FP32, [-1, 8]),
    ]
    assert scores.output[0].label_filename == "labels.txt" and not scores.output[1].label_filename
    assert (own_repository / "tokens-mask" / "labels.txt").read_text() == "red\ngreen\nblue\n"
    (warmup,) = scores.model_warmup
    assert {k: (v.data_type, list(v.dims), v.zero_data) for k, v in warmup.inputs.items()} == {
        "ids": (pb.TYPE_INT64, [1], True),  # zeros: a valid id
        "mask": (pb.TYPE_FP32, [1], True),
    }
    states = _parse(own_repository / "encoder" / "config.pbtxt")
    assert [(t.name, t.data_type, list(t.dims)) for t in states.input] == [("tokens", pb.TYPE_FP32, [-1, 16])]
    assert [(t.name, list(t.dims)) for t in states.output] == [("output", [-1, 16])]
    assert not states.output[0].label_filename and not (own_repository / "encoder" / "labels.txt").exists()
    assert list(states.model_warmup[0].inputs["tokens"].dims) == [2, 16]  # the declared minimum of seq
    for name in OWN_MODELS:
        graph = (own_root / name / artifact.ONNX).read_bytes()
        assert (own_repository / name / "1" / artifact.ONNX).read_bytes() == graph


def test_every_manifest_dtype_has_its_triton_type(own_root: Path) -> None:
    """float64, int32 and bool inputs (no model of tests/own_models has them): their types, and warm-up zeros
    (false for bool); a declared batch bound caps max_batch_size and the preferred sizes."""
    manifest = json.loads((own_root / "tokens-mask" / artifact.MANIFEST).read_text())
    dtypes = {"a": "float64", "b": "int32", "c": "bool"}
    manifest["inputs"] = [{"name": n, "shape": ["batch", "seq", 4], "dtype": d} for n, d in dtypes.items()]
    manifest["origin"]["dim_bounds"] = {"batch": [2, 20], "seq": [3, 9]}
    config = model_config(manifest)
    assert [(t.name, t.data_type, list(t.dims)) for t in config.input] == [
        ("a", pb.TYPE_FP64, [-1, 4]),
        ("b", pb.TYPE_INT32, [-1, 4]),
        ("c", pb.TYPE_BOOL, [-1, 4]),
    ]
    assert config.max_batch_size == 20 and list(config.dynamic_batching.preferred_batch_size) == [16, 20]
    (warmup,) = config.model_warmup
    assert warmup.batch_size == 2
    assert {k: (v.data_type, list(v.dims), v.zero_data) for k, v in warmup.inputs.items()} == {
        "a": (pb.TYPE_FP64, [3, 4], True),
        "b": (pb.TYPE_INT32, [3, 4], True),
        "c": (pb.TYPE_BOOL, [3, 4], True),
    }
    assert text_format.Parse(text_format.MessageToString(config), pb.ModelConfig()) == config


@pytest.fixture(scope="module")
def own_client(
    own_repository: Path, triton_venv: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[triton.InferenceServerClient]:
    with tritonserver(own_repository, triton_venv, tmp_path_factory.mktemp("own-tritonserver")) as url:
        yield triton.InferenceServerClient(url, network_timeout=60)


def _eager(name: str, arrays: tuple[np.ndarray, ...]) -> list[np.ndarray]:
    """The user's module (seeded as when it was packaged) in eval mode: every output."""
    import torch

    model, _, _ = own_models.build(name)
    model.eval()
    with torch.no_grad():
        outputs = model(*(torch.from_numpy(a) for a in arrays))
    return [o.numpy() for o in (outputs if isinstance(outputs, tuple) else (outputs,))]


def _own_inputs(name: str, batch: int, seq: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    if name == "tokens-mask":
        mask = np.ones((batch, seq), np.float32)
        mask[0, seq // 2 :] = 0  # a padded sample
        return rng.integers(0, own_models.VOCAB, (batch, seq), dtype=np.int64), mask
    return (rng.standard_normal((batch, seq, 16)).astype(np.float32),)


@pytest.mark.parametrize("name", OWN_MODELS)
def test_tritonserver_answers_a_users_model_as_its_eager_module(
    own_client: triton.InferenceServerClient, own_root: Path, name: str
) -> None:
    manifest = json.loads((own_root / name / artifact.MANIFEST).read_text())
    equivalence = json.loads((own_root / name / artifact.EQUIVALENCE).read_text())
    tolerance = equivalence["formats"]["onnx"]["tolerance_abs"]
    assert own_client.is_model_ready(name)
    rng = np.random.default_rng(5)
    for batch, seq in ((3, 7), (1, 2), (5, 24)):  # sequence lengths up to the declared maximum
        arrays = _own_inputs(name, batch, seq, rng)
        tensors = []
        for spec, array in zip(manifest["inputs"], arrays, strict=True):
            tensor = triton.InferInput(spec["name"], list(array.shape), np_to_triton_dtype(array.dtype))
            tensor.set_data_from_numpy(array)
            tensors.append(tensor)
        result = own_client.infer(name, tensors)
        for spec, expected in zip(manifest["outputs"], _eager(name, arrays), strict=True):
            got = result.as_numpy(spec["name"])
            assert got.dtype == np.dtype(spec["dtype"]) and got.shape == expected.shape, (spec, got.shape)
            np.testing.assert_allclose(got, expected, rtol=0, atol=tolerance)
    metadata = own_client.get_model_metadata(name)
    assert [(t["name"], t["datatype"]) for t in metadata["inputs"]] == [
        (s["name"], {"float32": "FP32", "int64": "INT64"}[s["dtype"]]) for s in manifest["inputs"]
    ]
