"""The JavaScript client (src/torchzoo/js_client/client.mjs) gives the Python runtime's answers.

Node: onnxruntime-node through js/test/node_driver.mjs, for names, an MNIST model, wine and the multi-label
model: outputs within 1e-5 of ``torchzoo.serve_cli.load(dir).predict``, identical labels, identical refusal
messages. Browser: the demo page examples/web/ in headless Chromium (Debian's /usr/bin/chromium driven by
playwright-core, js/test/browser.mjs), served by a Python http.server on a free 127.0.0.1 port.
Needs ``npm ci --ignore-scripts`` in js/ (.ci/run does it; the fixture runs it when node_modules is missing).

A user's own models (tests/own_models, packaged with ``torchzoo.package``, preprocessing ``tensors``): int64 ids +
a float32 mask with two outputs, and a TransformerEncoder (task ``tensor``), through the client in Node and
the tokens model's ``torchzoo embed`` bundle in Node and Chromium, equal to the eager module within the
artifact's tolerance.
"""

from __future__ import annotations

import base64
import functools
import gzip
import http.server
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import own_models
import pytest

from torchzoo.core.errors import UserInputError

from support import ROOT, Zoo, run_cli

pytestmark = pytest.mark.slow  # Node, npm packages and Chromium

JS = ROOT / "js"
NODE_TIMEOUT = 300
TOL = 1e-5


@pytest.fixture(scope="module")
def node_modules() -> Path:
    if (
        not (JS / "node_modules" / "onnxruntime-node").is_dir()
        or not (JS / "node_modules" / "playwright-core").is_dir()
    ):
        done = subprocess.run(["npm", "ci", "--ignore-scripts"], cwd=JS, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
    return JS / "node_modules"


def node(script: str, request: dict[str, Any], timeout: float = NODE_TIMEOUT) -> dict[str, Any]:
    done = subprocess.run(
        ["node", str(JS / "test" / script)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def uint8(array: np.ndarray) -> dict[str, Any]:
    return {
        "uint8_b64": base64.b64encode(np.ascontiguousarray(array, np.uint8).tobytes()).decode(),
        "shape": list(array.shape),
    }


def float32(array: np.ndarray) -> dict[str, Any]:
    return typed(np.asarray(array, np.float32))


def typed(array: np.ndarray) -> dict[str, Any]:
    """A tensor for the driver, which decodes it into the typed array of its dtype (bool: 0/1 bytes)."""
    data = np.ascontiguousarray(array)
    return {f"{data.dtype}_b64": base64.b64encode(data.tobytes()).decode(), "shape": list(array.shape)}


def decode(item: Any) -> Any:
    """A case's input as the Python runtime takes it (the JS driver decodes the same JSON)."""
    if isinstance(item, dict) and "uint8_b64" in item:
        return np.frombuffer(base64.b64decode(item["uint8_b64"]), np.uint8).reshape(item["shape"])
    if isinstance(item, dict) and "float32_b64" in item:
        return np.frombuffer(base64.b64decode(item["float32_b64"]), np.float32).reshape(item["shape"])
    if isinstance(item, dict) and "csv" in item:
        return Path(item["name"])
    return item


def python_answers(directory: Path, cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from torchzoo.serve_cli import load

    model = load(directory)
    answers = []
    for case in cases:
        try:
            inputs = [decode(item) for item in case["inputs"]]
            results = model.predict(inputs, top_k=case.get("topK", 3), threshold=case.get("threshold", 0.5))
            answers.append({"results": results})
        except UserInputError as exc:
            answers.append({"error": {"name": type(exc).__name__, "message": str(exc)}})
    return answers


def assert_same(js: Any, py: Any, tol: float, where: str = "") -> None:
    """Equal structure, keys, labels and messages; numbers within ``tol``."""
    if isinstance(py, dict):
        assert isinstance(js, dict) and list(js) == list(py), f"{where}: keys {list(js)} != {list(py)}"
        for key in py:
            assert_same(js[key], py[key], tol, f"{where}.{key}")
    elif isinstance(py, list):
        assert isinstance(js, list) and len(js) == len(py), f"{where}: {js!r:.200} != {py!r:.200}"
        for i, (a, b) in enumerate(zip(js, py, strict=True)):
            assert_same(a, b, tol, f"{where}[{i}]")
    elif isinstance(py, float):
        assert isinstance(js, int | float) and abs(js - py) <= tol, f"{where}: {js} != {py}"
    else:
        assert js == py, f"{where}: {js!r} != {py!r}"


def compare(directory: Path, cases: list[dict[str, Any]], tol: float = TOL) -> list[dict[str, Any]]:
    """Run every case through the JS client in Node and through the Python runtime; they must agree."""
    js = node("node_driver.mjs", {"artifact": str(directory), "cases": cases})
    assert "load_error" not in js, js
    py = python_answers(directory, cases)
    for i, (a, b) in enumerate(zip(js["answers"], py, strict=True)):
        assert_same(a, b, tol, f"case {i} {str(cases[i]['inputs'])[:60]}")
    return py


def mnist_test_images(data: Path, count: int) -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(data / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz") as fh:
        images = np.frombuffer(fh.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:count]
    with gzip.open(data / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz") as fh:
        labels = np.frombuffer(fh.read(), np.uint8, offset=8)[:count]
    return images, labels


def _foldable(name: str) -> bool:
    from torchzoo.core.text_codec import fold_to_ascii

    try:
        fold_to_ascii(name, strict=True)
    except UserInputError:
        return False
    return True


# --- Node ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_names_in_node_match_the_python_runtime(zoo: Zoo, node_modules: Path) -> None:
    from torchzoo.train.datasets import read_names
    from torchzoo.train.names import NamesSplits

    data = read_names(zoo.data / "names")
    held_out = NamesSplits(data, seed=0).test_names  # folded to ASCII: the accented ones come from the files
    accented = [n for n in sorted({n for n in data.names if not n.isascii()}) if _foldable(n)][::5][:12]
    names = accented + [n for n in held_out if n.isascii()][: 50 - len(accented)]
    assert len(names) == 50 and len(accented) == 12
    refusals = [
        "Strauß",
        "R0ssi",
        "😀",
        "Иванов",
        "",
        "   ",
        "x" * 65,
        "李",
        "Smith\x00",
        "O'Brien2",
        "Tab\tbed",
        "Ωmega",
        "a" * 1025,
    ]
    cases = [
        {"inputs": names, "topK": 3},
        *({"inputs": [n], "topK": 18} for n in names[:8]),
        {"inputs": ["Müller", "Nguyễn", "  Rossi  ", "O'Neil", "Dvořák", "ＲＯＳＳＩ"], "topK": 1},
        *({"inputs": [bad]} for bad in refusals),
        {"inputs": ["Rossi", "R0ssi"]},
        {"inputs": [5]},
        {"inputs": []},
    ]
    py = compare(zoo.exported("names") / "names", cases)
    assert py[0]["results"][0]["input"] == names[0] and len(py[0]["results"]) == 50
    assert sum("error" in a for a in py) == len(refusals) + 3  # every refusal refused, in both runtimes


@pytest.mark.slow
def test_mnist_in_node_matches_the_python_runtime(zoo: Zoo, node_modules: Path) -> None:
    from torchzoo.core.image_codec import normalize
    from torchzoo.serve_cli import load

    directory = zoo.exported("mnist-mlp") / "mnist-mlp"
    images, labels = mnist_test_images(zoo.data, 50)
    params = load(directory).manifest["preprocessing"]
    floats = normalize(images[:3], params, [1, 28, 28])
    nan = floats[:1].copy()
    nan[0, 0, 0, 0] = np.nan
    cases = [
        {"inputs": [uint8(images)], "topK": 10},
        {"inputs": [uint8(images[:1, None]), uint8(images[1:2].reshape(1, 784))]},
        {"inputs": [float32(floats)], "topK": 2},
        {"inputs": [uint8(images[:2, :27, :27])]},
        {"inputs": [float32(floats.reshape(3, 784))]},
        {"inputs": [float32(nan)]},
    ]
    py = compare(directory, cases)
    predicted = [int(r["label"]) for r in py[0]["results"]]
    assert np.mean(np.array(predicted) == labels) >= 0.9
    assert [a["error"]["message"] for a in py[3:6]] == [
        "array: uint8 batch of shape [2, 27, 27]; expected [n, 1, 28, 28] or [n, 28, 28]",
        "array: float batch of shape [3, 784]; expected [n, 1, 28, 28]",
        "array: the batch holds NaN or infinite values",
    ]


@pytest.mark.slow
def test_wine_in_node_matches_the_python_runtime(zoo: Zoo, node_modules: Path, tmp_path: Path) -> None:
    from sklearn.datasets import load_wine

    rows = load_wine().data[::9]  # 20 rows over the three cultivars
    strings = [",".join(str(v) for v in row) for row in rows]
    csv_path = tmp_path / "wine.csv"
    csv_path.write_text("\ufeffalcohol,malic_acid,...\n" + "\n".join(strings[:10]) + "\n\n")  # BOM, header
    bad_csv = tmp_path / "short.csv"
    bad_csv.write_text(strings[0] + "\n" + ",".join(strings[1].split(",")[:12]) + "\n")
    empty_csv = tmp_path / "empty.csv"
    empty_csv.write_text("a,b\n")
    cases = [
        {"inputs": strings},
        {"inputs": [{"csv": csv_path.read_text(), "name": str(csv_path)}], "topK": 1},
        {"inputs": [rows[:3].tolist(), rows[3].tolist()]},
        {"inputs": [strings[0].replace(",", ";")]},
        {"inputs": ["1,2,3"]},
        {"inputs": ["abc," + strings[0].split(",", 1)[1]]},
        {"inputs": ["nan," + strings[0].split(",", 1)[1]]},
        {"inputs": [" -inf ," + strings[0].split(",", 1)[1]]},
        {"inputs": [[1.0] * 12]},
        {"inputs": ["1" * 101 + "," + strings[0].split(",", 1)[1]]},
        {"inputs": [True]},
        {"inputs": [{"csv": bad_csv.read_text(), "name": str(bad_csv)}]},
        {"inputs": [{"csv": empty_csv.read_text(), "name": str(empty_csv)}]},
    ]
    py = compare(zoo.exported("wine") / "wine", cases)
    assert len(py[1]["results"]) == 10 and py[1]["results"][0]["input"] == f"{csv_path}[0]"
    assert all("error" in a for a in py[4:])


@pytest.mark.slow
def test_multilabel_in_node_matches_the_python_runtime(zoo: Zoo, node_modules: Path) -> None:
    from torchzoo.train.celeba import DigitCanvases
    from torchzoo.train.datasets import read_mnist

    canvases = DigitCanvases(read_mnist(zoo.data / "MNIST" / "raw").test, seed=7, stream=9)
    pixels = np.stack([canvases.draw(i)[0] for i in range(3)])
    cases = [{"inputs": [uint8(pixels)], "threshold": t} for t in (0.5, 0.0, 1.0)]
    cases.append({"inputs": [uint8(pixels[:1, :, :255, :255])]})
    py = compare(zoo.exported("celeba-multilabel") / "celeba-multilabel", cases)
    assert py[1]["results"][0]["labels"] == [str(d) for d in range(10)]


# --- the browser -----------------------------------------------------------------------------------


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def site(zoo: Zoo, tmp_path: Path) -> Iterator[str]:
    """The repository's page, client and node_modules, and the test's artifacts, over HTTP on 127.0.0.1."""
    root = tmp_path / "site"
    root.mkdir()
    for name in ("examples", "js", "src"):
        (root / name).symlink_to(ROOT / name)
    zoo.exported("names")
    (root / "artifacts").symlink_to(zoo.exported("mnist-mlp"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.mark.slow
def test_the_web_page_in_chromium_matches_the_python_runtime(
    zoo: Zoo, node_modules: Path, site: str, tmp_path: Path
) -> None:
    from torchzoo.serve_cli import load

    images, labels = mnist_test_images(zoo.data, 1)
    screenshot = tmp_path / "page.png"
    answer = node(
        "browser.mjs",
        {
            "url": f"{site}/examples/web/index.html?mnist=mnist-mlp",
            "name": "Rossi",
            "stroke": True,
            "digit": images[0].reshape(-1).tolist(),
            "screenshot": str(screenshot),
        },
    )
    assert "error" not in answer, answer
    assert answer["loaded"] == ["names", "mnist-mlp"]
    assert not [line for line in answer["console"] if line.startswith("pageerror")], answer["console"]

    names = load(zoo.directory("names"))
    expected = names.predict(["Rossi"], top_k=3)[0]
    assert answer["name"]["top1"] == expected["label"] == "Italian"
    assert answer["name"]["shown"][0].startswith("Italian ")
    assert_same(answer["name"]["result"], expected, 1e-4)

    mnist = load(zoo.directory("mnist-mlp"))
    for drawn in (answer["digit"], answer["stroke"]):  # the injected test digit, and a mouse stroke
        pixels = np.array(drawn["pixels"], np.uint8).reshape(1, 28, 28)
        assert pixels.max() > 200
        expected = mnist.predict([pixels], top_k=10)[0]
        assert_same(drawn["results"]["mnist-mlp"], expected, 1e-4)
        assert drawn["table"][0][:2] == ["mnist-mlp", expected["label"]]
    assert answer["digit"]["results"]["mnist-mlp"]["label"] == str(labels[0])
    assert screenshot.stat().st_size > 10_000 and screenshot.read_bytes()[:4] == b"\x89PNG"


# --- torchzoo embed -----------------------------------------------------------------------------------


def _snippet(readme: str, language: str) -> str:
    return readme.split(f"```{language}\n", 1)[1].split("```", 1)[0]


@pytest.mark.slow
def test_embed_bundle_runs_its_readme_snippet_in_node_and_its_page_in_chromium(
    zoo: Zoo, node_modules: Path, tmp_path: Path
) -> None:
    from torchzoo.serve_cli import load

    root = zoo.exported("names")
    bundle = tmp_path / "bundle"
    done = run_cli("embed", "names", "--out", str(bundle), "--artifacts-dir", str(root), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["files"] == [
        "model.onnx", "manifest.json", "torchzoo-client.mjs", "package.json", "README.md", "index.html"
    ]  # fmt: skip
    assert (bundle / "torchzoo-client.mjs").read_bytes() == (ROOT / "src/torchzoo/js_client/client.mjs").read_bytes()
    expected = load(root / "names").predict(["Rossi"], top_k=3)
    assert load(bundle).predict(["Rossi"], top_k=3) == expected  # the Python runtime reads the bundle too

    (bundle / "node_modules").symlink_to(node_modules)  # what `npm install --ignore-scripts` gives the app
    (bundle / "app.mjs").write_text(_snippet((bundle / "README.md").read_text(), "js"))
    ran = subprocess.run(["node", "app.mjs"], cwd=bundle, capture_output=True, text=True, timeout=NODE_TIMEOUT)
    assert ran.returncode == 0, ran.stderr
    assert_same(json.loads(ran.stdout), expected, TOL)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(bundle)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
        answer = node("browser.mjs", {"url": url, "bundleTexts": ["Rossi", "R0ssi"]})
    finally:
        server.shutdown()
        server.server_close()
    assert "error" not in answer, answer
    shown, refused = answer["bundle"]
    assert_same(json.loads(shown["json"]), expected, 1e-4)
    assert refused["error"] == "name 'R0ssi' has characters the model does not know: '0' " + (
        '(it knows ASCII letters and " .,;\'", accents are folded away)'
    )


@pytest.mark.slow
def test_embed_and_the_js_client_refuse_a_damaged_artifact(zoo: Zoo, node_modules: Path, tmp_path: Path) -> None:
    from torchzoo.core.artifact import seal_manifest

    damaged = tmp_path / "names"
    shutil.copytree(zoo.exported("names") / "names", damaged)
    with open(damaged / "model.onnx", "ab") as fh:
        fh.write(b"\0")
    done = run_cli("embed", str(damaged), "--out", str(tmp_path / "bundle"))
    message = f"{damaged / 'model.onnx'} does not match the sha256 in its manifest (modified or damaged)"
    assert done.returncode == 2 and message in done.stderr and not (tmp_path / "bundle").exists()
    js = node("node_driver.mjs", {"artifact": str(damaged), "cases": []})
    assert js["load_error"] == {"name": "ArtifactError", "message": message}

    future = tmp_path / "future"
    shutil.copytree(zoo.exported("names") / "names", future)
    manifest = json.loads((future / "manifest.json").read_text())
    manifest.pop("manifest_sha256")
    (future / "manifest.json").write_text(json.dumps(seal_manifest({**manifest, "schema_version": 99})))
    js = node("node_driver.mjs", {"artifact": str(future), "cases": []})
    assert js["load_error"]["name"] == "ArtifactError"
    assert "has schema version 99; this runtime reads version" in js["load_error"]["message"]
    assert run_cli("predict", str(future), "Rossi").returncode == 2  # the Python runtime refuses it too


# --- a user's own models (raw tensors) ----------------------------------------------------------------------


TOKEN_LABELS = ["red", "green", "blue"]


@pytest.fixture(scope="module")
def own_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("own") / "artifacts"
    for name in ("tokens-mask", "encoder"):
        own_models.package(name, root, formats="onnx")
    return root


def _eager(name: str, *arrays: np.ndarray) -> list[np.ndarray]:
    """The user's module (seeded as when it was packaged) in eval mode: every output."""
    import torch

    model, _, _ = own_models.build(name)
    model.eval()
    with torch.no_grad():
        outputs = model(*(torch.from_numpy(a) for a in arrays))
    return [o.numpy() for o in (outputs if isinstance(outputs, tuple) else (outputs,))]


def _tolerance(directory: Path) -> float:
    return json.loads((directory / "equivalence.json").read_text())["formats"]["onnx"]["tolerance_abs"]


def _tokens(rng: np.random.Generator, batch: int = 4, seq: int = 9) -> tuple[np.ndarray, np.ndarray]:
    mask = np.ones((batch, seq), np.float32)
    mask[0, seq // 2 :] = 0  # a padded sample
    return rng.integers(0, own_models.VOCAB, (batch, seq), dtype=np.int64), mask


def _expected_results(logits: np.ndarray, labels: list[str], top_k: int = 3) -> list[dict[str, Any]]:
    """What predict answers for a softmax classifier's logits (float64 softmax, best first)."""
    shifted = np.exp(logits.astype(np.float64) - logits.max(1, keepdims=True))
    probs = shifted / shifted.sum(1, keepdims=True)
    out = []
    for i, row in enumerate(probs):
        top = [{"label": labels[j], "probability": float(row[j])} for j in np.argsort(-row)[:top_k]]
        out.append({"input": f"array[{i}]" if len(probs) > 1 else "array", "label": top[0]["label"], "top": top})
    return out


@pytest.mark.slow
def test_a_users_tensor_models_in_node_equal_their_eager_modules(own_root: Path, node_modules: Path) -> None:
    rng = np.random.default_rng(3)
    ids, mask = _tokens(rng)
    tokens = rng.standard_normal((2, 11, 16)).astype(np.float32)
    directory = own_root / "tokens-mask"
    tol = _tolerance(directory)
    cases = [
        {"inputs": {"ids": typed(ids), "mask": typed(mask)}, "method": "runTensors"},
        {"inputs": {"ids": typed(ids), "mask": typed(mask)}},
        {"inputs": [{"ids": ids.tolist(), "mask": mask.astype(int).tolist()}], "topK": 1},  # nested arrays
        {"inputs": [typed(ids.astype(np.int32)), typed(mask)]},  # in input order; int32 widens to int64
        {"inputs": {"ids": typed(ids.astype(np.float32)), "mask": typed(mask)}},
        {"inputs": {"ids": (ids + 0.5).tolist(), "mask": mask.tolist()}},
        {"inputs": {"ids": typed(ids)}},
        {"inputs": {"ids": typed(ids), "mask": typed(mask[:, :5])}},
        {"inputs": {"ids": typed(ids), "mask": typed(np.full_like(mask, np.nan))}},
        {"inputs": {"ids": typed(ids[:, None]), "mask": typed(mask)}},
    ]
    js = node("node_driver.mjs", {"artifact": str(directory), "cases": cases})
    assert "load_error" not in js, js
    outputs, *answers = js["answers"]
    logits, states = _eager("tokens-mask", ids, mask)
    for name, expected in (("scores", logits), ("states", states)):
        got = outputs["outputs"][name]
        assert got["dims"] == list(expected.shape)
        np.testing.assert_allclose(np.reshape(got["data"], expected.shape), expected, rtol=0, atol=tol)
    expected = _expected_results(logits, TOKEN_LABELS)
    for answer in (answers[0], answers[2]):
        assert_same(answer["results"], expected, 2 * tol)  # softmax moves by at most twice the logits' error
    assert_same(answers[1]["results"], [{**r, "top": r["top"][:1]} for r in expected], 2 * tol)
    assert [a["error"]["message"] for a in answers[3:]] == [
        "input 'ids': a Float32Array; the model takes int64: a BigInt64Array",
        "input 'ids': floats; the model takes int64 values",
        "missing input 'mask'; the model takes ids, mask",
        "inputs disagree on the size of dim 'seq': 'ids' has 9, 'mask' has 5",
        "input 'mask' holds NaN or infinite values (or values past float32's range)",
        "input 'ids': shape [4, 1, 9]; the model takes int64 ['batch', 'seq']",
    ]

    encoder = own_root / "encoder"
    cases = [{"inputs": [typed(tokens)], "method": "runTensors"}, {"inputs": [typed(tokens)]}]
    js = node("node_driver.mjs", {"artifact": str(encoder), "cases": cases})
    (expected_tokens,) = _eager("encoder", tokens)
    raw, predicted = js["answers"]
    np.testing.assert_allclose(
        np.reshape(raw["outputs"]["output"]["data"], tokens.shape), expected_tokens, rtol=0, atol=_tolerance(encoder)
    )
    assert [r["input"] for r in predicted["results"]] == ["array[0]", "array[1]"]
    values = np.array([r["value"] for r in predicted["results"]])  # task "tensor": each sample's output 0
    np.testing.assert_allclose(values, expected_tokens, rtol=0, atol=_tolerance(encoder))


#: an image block a user declares for small-conv (RGB 16x16, pixels / 255 then per-channel mean and std)
SMALL_CONV_IMAGE = {
    "kind": "image",
    "mode": "RGB",
    "size": [16, 16],
    "scale": 255.0,
    "mean": [0.5, 0.5, 0.5],
    "std": [0.25, 0.25, 0.25],
}


@pytest.mark.slow
def test_a_users_model_with_declared_image_preprocessing_in_node(node_modules: Path, tmp_path: Path) -> None:
    """uint8 pixels through the client's image path equal the eager module on the normalized floats."""
    from torchzoo.core.image_codec import normalize

    root = tmp_path / "artifacts"
    own_models.package("small-conv", root, formats="onnx", preprocessing=SMALL_CONV_IMAGE)
    pixels = np.random.default_rng(6).integers(0, 256, (3, 3, 16, 16), dtype=np.uint8)
    js = node("node_driver.mjs", {"artifact": str(root / "small-conv"), "cases": [{"inputs": [uint8(pixels)]}]})
    (logits,) = _eager("small-conv", normalize(pixels, SMALL_CONV_IMAGE, [3, 16, 16]))
    expected = _expected_results(logits, [str(i) for i in range(5)])
    assert_same(js["answers"][0]["results"], expected, 2 * _tolerance(root / "small-conv"))


@pytest.mark.slow
def test_embed_of_a_users_model_runs_in_node_and_in_chromium(
    own_root: Path, node_modules: Path, tmp_path: Path
) -> None:
    directory = own_root / "tokens-mask"
    bundle = tmp_path / "bundle"
    done = run_cli("embed", "tokens-mask", "--out", str(bundle), "--artifacts-dir", str(own_root), "--json")
    assert done.returncode == 0, done.stderr
    readme = (bundle / "README.md").read_text()
    assert "ids int64 ['batch', 'seq'] (BigInt64Array)" in readme and "mask float32" in readme

    (bundle / "node_modules").symlink_to(node_modules)
    (bundle / "app.mjs").write_text(_snippet(readme, "js"))  # the README's example: zeros at the smallest shape
    ran = subprocess.run(["node", "app.mjs"], cwd=bundle, capture_output=True, text=True, timeout=NODE_TIMEOUT)
    assert ran.returncode == 0, ran.stderr
    zeros = (np.zeros((1, 1), np.int64), np.zeros((1, 1), np.float32))
    assert_same(json.loads(ran.stdout), _expected_results(_eager("tokens-mask", *zeros)[0], TOKEN_LABELS), 1e-5)

    ids, mask = _tokens(np.random.default_rng(4), batch=2, seq=5)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(bundle)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
        texts = [json.dumps({"ids": ids.tolist(), "mask": mask.tolist()}), json.dumps({"ids": ids.tolist()})]
        answer = node("browser.mjs", {"url": url, "bundleTexts": texts})
    finally:
        server.shutdown()
        server.server_close()
    assert "error" not in answer, answer
    assert not [line for line in answer["console"] if line.startswith("pageerror")], answer["console"]
    shown, refused = answer["bundle"]
    logits = _eager("tokens-mask", ids, mask)[0]
    assert_same(json.loads(shown["json"]), _expected_results(logits, TOKEN_LABELS), 2 * _tolerance(directory))
    assert refused["error"] == "missing input 'mask'; the model takes ids, mask"
