"""The torch-free runtime on models a user packaged (issue #28): ``load()``, ``torchzoo predict``, ``torchzoo serve``
(v2 REST and gRPC through tritonclient, v1 rows), ``predict-batch`` and ``list`` give what the user's own eager
module gives, within the artifact's tolerance, for each of tests/own_models' four models packaged from Python
(``torchzoo.package``) and from a saved ExportedProgram (``package_program``); bad input is one line, exit 2 or
HTTP 400."""

from __future__ import annotations

import concurrent.futures
import json
from pathlib import Path
from typing import Any

import numpy as np
import own_models
import pytest
import torch
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http

from torchzoo.core import artifact
from torchzoo.core.tensor_spec import TensorSpec
from torchzoo.export.user_sources import package_program
from torchzoo.serve_cli import load

from serving import Server, free_port, serving
from support import run_cli

pytestmark = pytest.mark.slow

MODELS = ("tokens-mask", "small-conv", "encoder", "regressor")
#: every artifact: (artifact name, own_models name); "-pt2" ones come from package_program
ARTIFACTS = [(name, name) for name in MODELS] + [(f"{name}-pt2", name) for name in MODELS]
ARTIFACT_NAMES = [a for a, _ in ARTIFACTS]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("own-artifacts")
    programs = tmp_path_factory.mktemp("programs")
    for name in MODELS:
        own_models.package(name, root)
        _, _, keywords = own_models.build(name)
        options = {k: v for k, v in keywords.items() if k != "dynamic_dims"}
        path = own_models.save_program(name, programs / f"{name}.pt2")
        package_program(path, name=f"{name}-pt2", artifacts_dir=root, **options)
    return root


@pytest.fixture(scope="module")
def grpc_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def server(root: Path, grpc_port: int, tmp_path_factory: pytest.TempPathFactory) -> Server:
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with serving(root, *ARTIFACT_NAMES, "--grpc-port", str(grpc_port), "--max-delay-ms", "20", log=log) as running:
        yield running


def _inputs(name: str, batch: int | None = None, seq: int | None = None) -> dict[str, np.ndarray]:
    """The model's example inputs by input name (numpy), optionally at another batch size or sequence length."""
    model, example, _ = own_models.build(name)
    names = list(__import__("inspect").signature(model.forward).parameters)
    arrays = {n: t.numpy() for n, t in zip(names, example, strict=True)}
    if batch is not None or seq is not None:
        rng = np.random.default_rng(7)
        arrays = {n: _resized(a, batch or a.shape[0], seq, rng) for n, a in arrays.items()}
    return arrays


def _resized(array: np.ndarray, batch: int, seq: int | None, rng: np.random.Generator) -> np.ndarray:
    shape = (batch, seq or array.shape[1], *array.shape[2:]) if array.ndim > 1 else (batch,)
    if array.dtype.kind == "i":
        return rng.integers(0, own_models.VOCAB, shape).astype(array.dtype)
    if array.ndim == 2 and array.dtype == np.float32 and set(np.unique(array)) <= {0.0, 1.0}:
        return np.ones(shape, array.dtype)  # a mask
    return rng.standard_normal(shape).astype(array.dtype)


def _eager(name: str, arrays: dict[str, np.ndarray]) -> list[np.ndarray]:
    model, _, _ = own_models.build(name)
    with torch.no_grad():
        out = model.eval()(*(torch.from_numpy(a) for a in arrays.values()))
    return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]


def _tolerance(root: Path, artifact_name: str) -> float:
    equivalence = json.loads((root / artifact_name / artifact.EQUIVALENCE).read_text())
    return float(equivalence["formats"]["onnx"]["tolerance_abs"])


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _assert_results(results: list[dict[str, Any]], manifest: dict[str, Any], eager: list[np.ndarray], tol: float):
    """``predict``'s results (as load() returns them or --json prints them) against the eager outputs."""
    assert len(results) == len(eager[0])
    task = manifest["task"]
    for i, result in enumerate(results):
        if task == "tensor":
            names = [o["name"] for o in manifest["outputs"]]
            assert list(result["outputs"]) == names
            for name, want in zip(names, eager, strict=True):
                np.testing.assert_allclose(np.asarray(result["outputs"][name]), want[i], rtol=0, atol=tol)
        elif task == "regression":
            np.testing.assert_allclose(result["value"], eager[0][i, 0], rtol=0, atol=tol)
        else:
            probabilities = _softmax(eager[0][i].astype(np.float64))
            got = {t["label"]: t["probability"] for t in result["top"]}
            assert len(got) == len(manifest["labels"])  # --top-k covers every label
            want = dict(zip(manifest["labels"], probabilities, strict=True))
            np.testing.assert_allclose([got[k] for k in want], list(want.values()), rtol=0, atol=tol)
            assert result["label"] == manifest["labels"][int(np.argmax(probabilities))]


@pytest.mark.parametrize(("artifact_name", "name"), ARTIFACTS)
def test_load_and_predict_cli_equal_the_eager_model(root: Path, tmp_path: Path, artifact_name: str, name: str) -> None:
    arrays = _inputs(name)
    eager = _eager(name, arrays)
    tol = _tolerance(root, artifact_name)
    predictor = load(root / artifact_name)
    manifest = predictor.manifest
    assert manifest["origin"]["kind"] == ("pt2" if artifact_name.endswith("-pt2") else "python")
    for got, want in zip(predictor.run(list(arrays.values())), eager, strict=True):  # every output, raw
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=tol)
    top_k = len(manifest["labels"]) or 3
    for given in (arrays, list(arrays.values())):  # a dict by name, or the arrays in input order
        _assert_results(predictor.predict(given, top_k=top_k), manifest, eager, tol)
    if artifact_name.endswith("-pt2"):  # NAME=FILE.npy per input, or FILE.npz for one input
        files = []
        for key, array in arrays.items():
            np.save(tmp_path / f"{key}.npy", array)
            files.append(f"{key}={tmp_path / f'{key}.npy'}")
        if len(files) == 1:
            np.savez(tmp_path / "inputs.npz", **arrays)
            files = [str(tmp_path / "inputs.npz")]
    elif len(arrays) == 1:  # FILE.npy for a one-input model, FILE.npz for several
        np.save(tmp_path / "input.npy", next(iter(arrays.values())))
        files = [str(tmp_path / "input.npy")]
    else:
        np.savez(tmp_path / "inputs.npz", **arrays)
        files = [str(tmp_path / "inputs.npz")]
    result = run_cli("predict", artifact_name, *files, "--top-k", str(top_k), "--artifacts-dir", str(root), "--json")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["model"] == artifact_name
    _assert_results(printed["results"], manifest, eager, tol)
    assert printed["results"][0]["input"].startswith(files[0] if len(files) == 1 else files[0].split("=")[0])


@pytest.mark.parametrize(("artifact_name", "name"), ARTIFACTS)
def test_serve_v2_http_and_grpc_equal_the_eager_model(
    server: Server, grpc_port: int, root: Path, artifact_name: str, name: str
) -> None:
    arrays = _inputs(name)
    eager = _eager(name, arrays)
    tol = _tolerance(root, artifact_name)
    manifest = artifact.read_manifest(root / artifact_name)
    specs = [TensorSpec.from_json(s) for s in manifest["inputs"]]
    outputs = [o["name"] for o in manifest["outputs"]]
    http = triton_http.InferenceServerClient(server.url.removeprefix("http://"), network_timeout=30)
    grpc = triton_grpc.InferenceServerClient(f"127.0.0.1:{grpc_port}")
    for binary in (True, False):
        tensors = []
        for spec in specs:
            tensor = triton_http.InferInput(spec.name, list(arrays[spec.name].shape), spec.datatype)
            tensor.set_data_from_numpy(arrays[spec.name], binary_data=binary)
            tensors.append(tensor)
        answer = http.infer(artifact_name, tensors)
        for output, want in zip(outputs, eager, strict=True):  # every output of the graph, by default
            np.testing.assert_allclose(answer.as_numpy(output), want, rtol=0, atol=tol)
    tensors = []
    for spec in specs:
        tensor = triton_grpc.InferInput(spec.name, list(arrays[spec.name].shape), spec.datatype)
        tensor.set_data_from_numpy(arrays[spec.name])
        tensors.append(tensor)
    answer = grpc.infer(artifact_name, tensors, outputs=[triton_grpc.InferRequestedOutput(outputs[-1])])
    np.testing.assert_allclose(answer.as_numpy(outputs[-1]), eager[-1], rtol=0, atol=tol)
    assert len(answer.get_response().outputs) == 1  # 'outputs' filters as for a zoo model


def test_tokens_mask_over_the_wire_int64_and_fp32(server: Server, grpc_port: int, root: Path) -> None:
    """The two-input model whose ids are INT64: both outputs over REST, gRPC raw and typed contents, v1 rows."""
    arrays = _inputs("tokens-mask")
    eager = _eager("tokens-mask", arrays)
    tol = _tolerance(root, "tokens-mask")
    metadata = server.json("/v2/models/tokens-mask")[1]
    assert [(t["name"], t["datatype"]) for t in metadata["inputs"]] == [("ids", "INT64"), ("mask", "FP32")]
    assert [(t["name"], t["shape"]) for t in metadata["outputs"]] == [("scores", [-1, 3]), ("states", [-1, -1, 8])]
    tensors = [(name, datatype, arrays[name]) for name, datatype in (("mask", "FP32"), ("ids", "INT64"))]
    status, body = server.json(  # JSON data, in another order than the model's
        "/v2/models/tokens-mask/infer",
        {"inputs": [{"name": n, "datatype": d, "shape": list(a.shape), "data": a.tolist()} for n, d, a in tensors]},
    )
    assert status == 200, body
    got = {o["name"]: np.asarray(o["data"]).reshape(o["shape"]) for o in body["outputs"]}
    assert list(got) == ["scores", "states"]
    for name, want in zip(got, eager, strict=True):
        np.testing.assert_allclose(got[name], want, rtol=0, atol=tol)
    grpc = triton_grpc.InferenceServerClient(f"127.0.0.1:{grpc_port}")
    ids = triton_grpc.InferInput("ids", list(arrays["ids"].shape), "INT64")
    ids.set_data_from_numpy(arrays["ids"])
    mask = triton_grpc.InferInput("mask", list(arrays["mask"].shape), "FP32")
    mask.set_data_from_numpy(arrays["mask"])
    answer = grpc.infer("tokens-mask", [ids, mask])
    np.testing.assert_allclose(answer.as_numpy("scores"), eager[0], rtol=0, atol=tol)
    np.testing.assert_allclose(answer.as_numpy("states"), eager[1], rtol=0, atol=tol)
    rows = [{"ids": i.tolist(), "mask": m.tolist()} for i, m in zip(arrays["ids"], arrays["mask"], strict=True)]
    status, body = server.json("/v1/models/tokens-mask:predict", {"instances": rows, "parameters": {"top_k": 3}})
    assert status == 200, body
    _assert_results(body["predictions"], artifact.read_manifest(root / "tokens-mask"), eager, tol)


def test_batched_requests_of_other_sequence_lengths_each_get_their_own_answer(server: Server, root: Path) -> None:
    """Concurrent requests whose seq differs are never concatenated with each other; each answer is its own."""
    tol = _tolerance(root, "tokens-mask")
    requests = [_inputs("tokens-mask", batch=1 + i % 3, seq=3 + i % 4) for i in range(16)]

    def ask(arrays: dict[str, np.ndarray]) -> np.ndarray:
        client = triton_http.InferenceServerClient(server.url.removeprefix("http://"), network_timeout=30)
        tensors = []
        for name, datatype in (("ids", "INT64"), ("mask", "FP32")):
            tensor = triton_http.InferInput(name, list(arrays[name].shape), datatype)
            tensor.set_data_from_numpy(arrays[name])
            tensors.append(tensor)
        return client.infer("tokens-mask", tensors).as_numpy("states")

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, requests))
    for arrays, got in zip(requests, answers, strict=True):
        np.testing.assert_allclose(got, _eager("tokens-mask", arrays)[1], rtol=0, atol=tol)


def test_serve_refuses_bad_tensors_with_400(server: Server) -> None:
    ids, mask = [[1, 2, 3]], [[1.0, 1.0, 1.0]]
    cases = [
        ([("ids", "FP32", ids), ("mask", "FP32", mask)], "datatype"),  # INT64 input sent as FP32
        ([("ids", "INT64", [[1.5, 2, 3]]), ("mask", "FP32", mask)], "INT64"),  # floats for an integer input
        ([("ids", "INT64", ids), ("mask", "FP32", [[1.0, 1.0]])], "seq"),  # seq differs between inputs
        ([("ids", "INT64", ids)], "missing input 'mask'"),
    ]
    for tensors, says in cases:
        body = {"inputs": [{"name": n, "datatype": d, "shape": np.shape(v), "data": v} for n, d, v in tensors]}
        status, answer = server.json("/v2/models/tokens-mask/infer", body)
        assert status == 400 and says in answer["error"], answer
    status, answer = server.json("/v1/models/tokens-mask:predict", {"instances": [{"ids": [1, 2]}]})
    assert status == 400 and "missing input 'mask'" in answer["error"]


@pytest.mark.parametrize(("artifact_name", "name"), ARTIFACTS)
def test_predict_batch_rows_equal_the_eager_model(root: Path, tmp_path: Path, artifact_name: str, name: str) -> None:
    arrays = _inputs(name, batch=7)
    eager = _eager(name, arrays)
    np.savez(tmp_path / "rows.npz", **arrays)
    out = tmp_path / "rows.jsonl"
    manifest = artifact.read_manifest(root / artifact_name)
    top_k = str(len(manifest["labels"]) or 3)
    result = run_cli(
        "predict-batch", artifact_name, str(tmp_path / "rows.npz"), "-o", str(out), "--batch-size", "3",
        "--top-k", top_k, "--artifacts-dir", str(root), "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rows"] == 7
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["row"] for r in rows] == list(range(7))
    assert rows[2]["input"] == f"{tmp_path / 'rows.npz'}[2]"
    _assert_results(rows, manifest, eager, _tolerance(root, artifact_name))


def test_bad_inputs_are_one_line_and_exit_2(root: Path, tmp_path: Path) -> None:
    ids = np.array([[1, 2, 3], [4, 5, 6]])
    np.save(tmp_path / "ids.npy", ids)
    np.save(tmp_path / "ids_float.npy", ids.astype(np.float32))
    np.save(tmp_path / "mask.npy", np.ones((2, 3), np.float32))
    np.save(tmp_path / "mask3.npy", np.ones((3, 3), np.float32))
    cases = [
        ([f"ids={tmp_path / 'ids.npy'}"], "missing input 'mask'"),
        ([f"ids={tmp_path / 'ids_float.npy'}", f"mask={tmp_path / 'mask.npy'}"], "float32 values; the model takes"),
        ([f"ids={tmp_path / 'ids.npy'}", f"mask={tmp_path / 'mask3.npy'}"], "disagree on the batch size"),
        ([str(tmp_path)], "this model takes tensors"),
        ([str(tmp_path / "absent.npz")], "no such .npz file"),
    ]
    for args, says in cases:
        result = run_cli("predict", "tokens-mask", *args, "--artifacts-dir", str(root))
        assert result.returncode == 2, result.stderr
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("torchzoo: error: ") and says in last, result.stderr
        assert "Traceback" not in result.stderr
    np.savez(tmp_path / "rows.npz", ids=ids, nope=ids)
    result = run_cli("predict-batch", "tokens-mask", str(tmp_path / "rows.npz"), "-o", str(tmp_path / "o.jsonl"),
                     "--artifacts-dir", str(root))  # fmt: skip
    assert result.returncode == 2 and "unknown input 'nope'" in result.stderr
    assert not (tmp_path / "o.jsonl").exists()


def test_list_shows_own_models_beside_the_zoo(root: Path) -> None:
    result = run_cli("list", "--artifacts-dir", str(root), "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["tokens-mask"]["origin"] == "python" and rows["encoder-pt2"]["origin"] == "pt2"
    assert rows["encoder"]["task"] == "tensor" and rows["regressor"]["task"] == "regression"
    assert rows["small-conv"]["status"].startswith("exported: ") and "onnx-fp16" in rows["small-conv"]["status"]
    assert rows["names"]["origin"] == "zoo"  # the zoo's registered models are still listed


def test_serve_on_ray_ships_and_serves_an_own_model(root: Path, tmp_path: Path) -> None:
    """``serve --ray`` (a local Ray instance of the command's own) serves a user's model from the bytes it shipped,
    answering the two-input, two-output model as the eager module does."""
    arrays = _inputs("tokens-mask")
    eager = _eager("tokens-mask", arrays)
    tol = _tolerance(root, "tokens-mask")
    with serving(root, "tokens-mask", "--ray", "--replicas", "1", log=tmp_path / "ray.log", timeout=240) as running:
        http = triton_http.InferenceServerClient(running.url.removeprefix("http://"), network_timeout=60)
        tensors = []
        for name, datatype in (("ids", "INT64"), ("mask", "FP32")):
            tensor = triton_http.InferInput(name, list(arrays[name].shape), datatype)
            tensor.set_data_from_numpy(arrays[name], binary_data=True)
            tensors.append(tensor)
        answer = http.infer("tokens-mask", tensors)
        np.testing.assert_allclose(answer.as_numpy("scores"), eager[0], rtol=0, atol=tol)
        np.testing.assert_allclose(answer.as_numpy("states"), eager[1], rtol=0, atol=tol)


def test_predict_batch_on_ray_writes_the_local_rows_of_an_own_model(root: Path, tmp_path: Path) -> None:
    arrays = _inputs("tokens-mask", batch=40)
    np.savez(tmp_path / "rows.npz", **arrays)
    outputs = {}
    for how, extra in (("local", ()), ("ray", ("--ray", "--actors", "2"))):
        outputs[how] = tmp_path / f"{how}.jsonl"
        result = run_cli(
            "predict-batch", "tokens-mask", str(tmp_path / "rows.npz"), "-o", str(outputs[how]), "--batch-size",
            "8", *extra, "--artifacts-dir", str(root), "--json",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
    assert outputs["ray"].read_bytes() == outputs["local"].read_bytes()
    assert len(outputs["ray"].read_text().splitlines()) == 40
