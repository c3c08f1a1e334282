"""The documentation site (mkdocs.yml, docs/) builds strictly, its CLI reference is the command line's own help,
the README stays a front door, and every Python and shell snippet of the docs (docs/snippets/) runs for real.

Snippets are run as a reader would run them: shell snippets with ``bash -e`` in a temporary directory that holds
``artifacts/`` (quick-profile models) and whatever input files the snippet names, with the venv's ``bin/`` first
on PATH; the port or the server's address comes from the variable the snippet reads (``PORT``,
``TORCHZOO_URL``); Python snippets through ``runpy``. Each test checks what the snippet printed or wrote against
the runtime (``torchzoo.serve_cli.load``) or the CLI. Snippets that cannot run here (the set-up commands, which
create a venv; Docker; ``ray start`` on two machines) are checked by ``bash -n`` and by parsing every ``torchzoo``
command in them against the typer app, which every shell snippet also gets.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import runpy
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from torchzoo.serve_cli import load

from serving import free_port, serving
from support import ROOT, Zoo

DOCS = ROOT / "docs"
SNIPPETS = DOCS / "snippets"
README = ROOT / "README.md"
WINE_ROW = "13.2,1.78,2.14,11.2,100,2.65,2.76,0.26,1.28,4.38,1.05,3.4,1050"

#: every snippet file and the test that runs or checks it (a new snippet without a test fails
#: test_every_snippet_is_included_in_a_page_and_has_a_test)
TESTED_BY = {
    "tour.sh": "test_tour_snippet",
    "setup_main.sh": "test_setup_snippets_are_the_readme_commands",
    "setup_tests.sh": "test_setup_snippets_are_the_readme_commands",
    "data.sh": "test_data_snippet",
    "runtime_load.py": "test_runtime_load_snippet",
    "plain_onnxruntime.py": "test_plain_onnxruntime_snippet",
    "embed_node.sh": "test_embed_and_node_snippets",
    "node_app.mjs": "test_embed_and_node_snippets",
    "export.sh": "test_export_snippet",
    "serve.sh": "test_serve_snippet",
    "serve_tritonclient.py": "test_serve_tritonclient_snippet",
    "serve_grpc.py": "test_serve_grpc_snippet",
    "triton_export.sh": "test_triton_snippets",
    "triton_docker.sh": "test_triton_snippets",
    "ray_serve_local.sh": "test_ray_serve_local_snippet",
    "ray_serve_cluster.sh": "test_every_torchzoo_command_in_a_shell_snippet_parses",
    "predict_batch.sh": "test_predict_batch_snippets",
    "predict_batch_ray.sh": "test_predict_batch_snippets",
    "sign.sh": "test_sign_snippet",
    "netns_cluster.sh": "test_every_torchzoo_command_in_a_shell_snippet_parses",
    "own_model.py": "test_own_model_snippets",
    "own_model_pt2.sh": "test_own_model_snippets",
}


# ---------------------------------------------------------------------------------------------- helpers


def mkdocs_build(cwd: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )


def _end_group(pgid: int, grace: float = 60) -> None:
    """Wait until every process of the snippet's process group (a server it started in the background) has
    exited; SIGTERM, then SIGKILL, what is still there after ``grace`` seconds."""
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


def run_snippet(name: str, cwd: Path, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
    """``bash -e docs/snippets/NAME`` in ``cwd``, in a process group of its own (ended afterwards)."""
    environment = {
        **{k: v for k, v in os.environ.items() if k != "TORCHZOO_ARTIFACTS"},
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "COLUMNS": "200",
        **env,
    }
    command = ["bash", "-e", str(SNIPPETS / name)]
    process = subprocess.Popen(
        command, cwd=cwd, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _end_group(process.pid, grace=0)
        stdout, stderr = process.communicate()
        raise AssertionError(f"{name} ran past {timeout} s\n{stdout[-3000:]}\n{stderr[-3000:]}") from None
    finally:
        _end_group(process.pid)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def json_documents(text: str) -> list:
    """Every JSON object in ``text``, in order (curl prints its answers one after another)."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while (start := text.find("{", at)) >= 0:
        try:
            document, at = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            at = start + 1
            continue
        found.append(document)
    return found


def artifacts_in(cwd: Path, root: Path, *models: str) -> Path:
    """``cwd/artifacts/`` with copies of ``models`` from the zoo's artifact root (snippets may change them)."""
    for model in models:
        shutil.copytree(root / model, cwd / "artifacts" / model)
    return cwd / "artifacts"


def heldout_digits(root: Path, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` held-out MNIST test images as uint8 pixels (from the artifact's heldout.npz) and their labels."""
    with np.load(root / "mnist-mlp" / "heldout.npz") as npz:
        images, targets = npz["input/0"][:count], npz["targets"][:count]
    pixels = (images * 127.5 + 127.5).round().clip(0, 255).astype(np.uint8)  # the model takes (x / 255 - 0.5) / 0.5
    return pixels.reshape(count, 28, 28), targets


def assert_same_predictions(got: list[dict], expected: list[dict], tolerance: float = 1e-6) -> None:
    assert [r["input"] for r in got] == [r["input"] for r in expected]
    assert [r["label"] for r in got] == [r["label"] for r in expected]
    for mine, theirs in zip(got, expected, strict=True):
        assert [t["label"] for t in mine["top"]] == [t["label"] for t in theirs["top"]]
        np.testing.assert_allclose(
            [t["probability"] for t in mine["top"]], [t["probability"] for t in theirs["top"]], rtol=0, atol=tolerance
        )


VARIABLES = {"PORT": "8000", "TOKEN": "a-token"}


def torchzoo_commands(script: str) -> list[list[str]]:
    """The arguments of every ``torchzoo`` command in a shell script (continued lines joined, comments dropped,
    ``${VAR:-default}`` and ``$VAR`` replaced by example values)."""
    script = script.replace("\\\n", " ")
    script = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: VARIABLES.get(m.group(1), m.group(2)), script)
    script = re.sub(r"\$(\w+)", lambda m: VARIABLES.get(m.group(1), m.group(0)), script)
    commands = []
    for line in script.splitlines():
        words: list[str] = []
        for word in [*shlex.split(line, comments=True), "&&"]:
            if word in ("&&", "||", ";", "&", "|"):
                if words[:1] == ["torchzoo"]:
                    commands.append(words[1:])
                words = []
            else:
                words.append(word)
    return commands


def parse_torchzoo(args: list[str]) -> None:
    """Parse ``torchzoo ARGS`` as the command line would (commands, options, choices, types), without running it;
    raises the command line's usage error."""
    import typer.main

    from torchzoo.cli import app

    command = typer.main.get_command(app)
    ctx = command.make_context("torchzoo", [], resilient_parsing=True)
    path = ["torchzoo"]
    while hasattr(command, "list_commands"):
        assert args, f"'{' '.join(path)}' needs a command"
        name, *args = args
        command = command.get_command(ctx, name)
        assert command is not None, f"'{' '.join(path)}' has no command '{name}'"
        path.append(name)
    command.make_context(" ".join(path), list(args), parent=ctx)


# ------------------------------------------------------------------------------- the site and the README


def test_mkdocs_build_is_strict_and_inlines_the_snippets(tmp_path: Path) -> None:
    built = mkdocs_build(ROOT, tmp_path / "site")
    assert built.returncode == 0, built.stderr[-4000:]
    index = html.unescape(re.sub(r"<[^>]+>", "", (tmp_path / "site" / "index.html").read_text()))
    assert (SNIPPETS / "tour.sh").read_text().strip() in index  # the tour, included from docs/snippets/tour.sh
    assert "--8<--" not in index


def test_a_missing_snippet_fails_the_strict_build(tmp_path: Path) -> None:
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(DOCS, tmp_path / "docs")
    shutil.copytree(ROOT / "benchmarks", tmp_path / "benchmarks")
    with open(tmp_path / "docs" / "serving.md", "a") as page:
        page.write("\n```bash\n--8<--\ndocs/snippets/no_such_snippet.sh\n--8<--\n```\n")
    built = mkdocs_build(tmp_path, tmp_path / "site")
    assert built.returncode != 0
    assert "no_such_snippet.sh" in built.stderr


def test_every_snippet_is_included_in_a_page_and_has_a_test() -> None:
    pages = "\n".join(page.read_text() for page in DOCS.rglob("*.md"))
    included = set(re.findall(r"^\s*docs/snippets/(\S+)$", pages, flags=re.M))  # between --8<-- lines
    files = {path.name for path in SNIPPETS.iterdir() if path.is_file()}
    assert files == included, f"snippet files not included in a page: {sorted(files - included)}"
    assert files == set(TESTED_BY), f"snippets without a test in TESTED_BY: {sorted(files - set(TESTED_BY))}"
    assert all(callable(globals().get(test)) for test in TESTED_BY.values())


def test_cli_reference_is_the_command_lines_help() -> None:
    fresh = subprocess.run(
        [sys.executable, "-c", "import gen_cli_reference as g, sys; sys.stdout.write(g.render())"],
        cwd=DOCS,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(DOCS)},
    )
    assert fresh.returncode == 0, fresh.stderr
    assert "## torchzoo data download" in fresh.stdout and "## torchzoo serve" in fresh.stdout
    assert (DOCS / "cli.md").read_text() == fresh.stdout, (
        "docs/cli.md is not the command line's current help: run `python docs/gen_cli_reference.py` "
        "from the repository root and commit docs/cli.md"
    )


def _readme_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_is_a_front_door() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= 200
    setup = README.read_text().split("## Set-up")[1].split("\n## ")[0]
    setup_commands = {command.strip() for command in re.findall(r"```bash\n(.+?)\n```", setup, flags=re.S)}
    too_long = [line for line in lines if len(line) > 120 and line not in setup_commands]
    assert not too_long, too_long  # the two set-up commands stay single lines, as .ci/run runs one of them
    assert (SNIPPETS / "tour.sh").read_text() in _readme_blocks("bash")
    assert (SNIPPETS / "plain_onnxruntime.py").read_text() in _readme_blocks("python")
    assert (SNIPPETS / "own_model.py").read_text() in _readme_blocks("python")
    assert (SNIPPETS / "own_model_pt2.sh").read_text() in _readme_blocks("bash")
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README.read_text()):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), target


def test_setup_snippets_are_the_readme_commands() -> None:
    setup = README.read_text().split("## Set-up")[1].split("\n## ")[0]
    commands = re.findall(r"```bash\n(.+?)\n```", setup, flags=re.S)
    assert [f"{c}\n" for c in commands] == [
        (SNIPPETS / "setup_main.sh").read_text(),
        (SNIPPETS / "setup_tests.sh").read_text(),
    ]
    assert (SNIPPETS / "setup_tests.sh").read_text().strip() in (ROOT / ".ci" / "run").read_text().splitlines()
    # the main job's torchzoo commands are the tour's, on the full profile
    main_job = torchzoo_commands((SNIPPETS / "setup_main.sh").read_text())
    tour = [[w for w in c if w not in ("--profile", "quick")] for c in torchzoo_commands(
        (SNIPPETS / "tour.sh").read_text())]  # fmt: skip
    assert main_job and all(command in tour for command in main_job), main_job


def test_every_torchzoo_command_in_a_shell_snippet_parses() -> None:
    checked = 0
    for snippet in sorted(SNIPPETS.glob("*.sh")):
        syntax = subprocess.run(["bash", "-n", str(snippet)], capture_output=True, text=True)
        assert syntax.returncode == 0, f"{snippet.name}: {syntax.stderr}"
        for args in torchzoo_commands(snippet.read_text()):
            try:
                parse_torchzoo(args)
            except Exception as exc:
                raise AssertionError(f"{snippet.name}: torchzoo {shlex.join(args)}: {exc}") from exc
            checked += 1
    assert checked >= 25
    for wrong in (["serve", "names", "--replica", "2"], ["predict-batch", "names"], ["data", "fetch"]):
        with pytest.raises(Exception):  # noqa: B017 (the command line's own usage errors, vendored click classes)
            parse_torchzoo(wrong)


def test_data_snippet(tmp_path: Path) -> None:
    ran = run_snippet("data.sh", tmp_path, TORCHZOO_DATA=str(tmp_path / "data"))
    assert ran.returncode == 0, ran.stderr
    assert len(list((tmp_path / "data" / "names").glob("*.txt"))) == 18
    assert "verified (18 files)" in ran.stdout
    assert "torchzoo data download mnist" in ran.stdout  # what fetches the datasets not there


# ------------------------------------------------------------------------------------- snippets that run


@pytest.mark.slow
def test_tour_snippet(tmp_path: Path) -> None:
    ran = run_snippet("tour.sh", tmp_path, PORT=str(free_port()))
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    names = load(tmp_path / "artifacts" / "names")
    expected = names.predict(["Rossi"])
    assert {"predictions": expected} in json_documents(ran.stdout)
    assert re.search(rf"Rossi\s+{expected[0]['label']} ", ran.stdout)  # torchzoo predict's table
    assert "verify" in ran.stdout and "FAIL" not in ran.stdout
    bundle = tmp_path / "names-bundle"
    assert (bundle / "model.onnx").read_bytes() == (tmp_path / "artifacts" / "names" / "model.onnx").read_bytes()
    assert (bundle / "torchzoo-client.mjs").is_file()


@pytest.mark.slow
def test_runtime_load_snippet(zoo: Zoo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    root = zoo.exported("names")
    monkeypatch.setenv("TORCHZOO_ARTIFACTS", str(root))
    namespace = runpy.run_path(str(SNIPPETS / "runtime_load.py"), run_name="__main__")
    assert "'input': 'Rossi'" in capsys.readouterr().out
    cli = subprocess.run(
        [sys.executable, "-c", "from torchzoo.cli import main; main()", "predict", "names", "Rossi", "Nakamura",
         "--json", "--artifacts-dir", str(root)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert namespace["predictions"] == json.loads(cli.stdout)["results"]


@pytest.mark.slow
def test_plain_onnxruntime_snippet(zoo: Zoo, tmp_path: Path) -> None:
    shutil.copytree(zoo.exported("names") / "names", tmp_path / "names")
    ran = subprocess.run(
        [sys.executable, str(SNIPPETS / "plain_onnxruntime.py")], cwd=tmp_path, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    label, probability = ran.stdout.split()
    top = load(tmp_path / "names").predict(["Rossi"])[0]["top"][0]
    assert label == top["label"]
    assert abs(float(probability) - top["probability"]) < 1e-6
    assert "torchzoo" not in (SNIPPETS / "plain_onnxruntime.py").read_text()


@pytest.mark.slow
def test_embed_and_node_snippets(zoo: Zoo, tmp_path: Path) -> None:
    modules = ROOT / "js" / "node_modules"
    if not (modules / "onnxruntime-node").is_dir():  # as tests/test_js_client.py: .ci/run installs them first
        done = subprocess.run(["npm", "ci", "--ignore-scripts"], cwd=ROOT / "js", capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
    artifacts_in(tmp_path, zoo.exported("names"), "names")
    (tmp_path / "examples").symlink_to(ROOT / "examples")  # the snippet runs from the repository root
    expected = load(tmp_path / "artifacts" / "names").predict(["Rossi"], top_k=3)

    ran = run_snippet("embed_node.sh", tmp_path)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    bundle = tmp_path / "names-bundle"
    assert (bundle / "model.onnx").read_bytes() == (tmp_path / "artifacts" / "names" / "model.onnx").read_bytes()
    answer = json_documents(ran.stdout)[-1]  # node examples/node/predict.mjs
    assert answer["model"] == "names"
    assert_same_predictions(answer["results"], expected, tolerance=1e-5)

    app = tmp_path / "app"
    app.mkdir()
    shutil.copy(SNIPPETS / "node_app.mjs", app / "app.mjs")
    shutil.copy(bundle / "torchzoo-client.mjs", app / "torchzoo-client.mjs")
    (app / "node_modules").symlink_to(modules)
    (app / "artifacts").symlink_to(tmp_path / "artifacts")
    node = subprocess.run(["node", "app.mjs"], cwd=app, capture_output=True, text=True, timeout=300)
    assert node.returncode == 0, node.stderr
    assert_same_predictions(json.loads(node.stdout), expected, tolerance=1e-5)


@pytest.mark.slow
def test_export_snippet(zoo: Zoo, data_root: Path, tmp_path: Path) -> None:
    artifacts = artifacts_in(tmp_path, zoo.exported("mnist-mlp"), "mnist-mlp")
    (artifacts / "mnist-mlp" / "model.int8.onnx").unlink()  # the snippet's export makes it again
    image, _ = heldout_digits(artifacts, 1)
    Image.fromarray(image[0]).save(tmp_path / "digit.png")
    ran = run_snippet("export.sh", tmp_path, TORCHZOO_DATA=str(data_root))
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    int8 = load(artifacts / "mnist-mlp", variant="int8")  # verified by the snippet's verify, then loaded here
    label = int8.predict([str(tmp_path / "digit.png")])[0]["label"]
    assert re.search(rf"digit\.png\s+{label} ", ran.stdout), ran.stdout[-2000:]
    assert "onnx-int8" in ran.stdout and "FAIL" not in ran.stdout


@pytest.mark.slow
def test_serve_snippet(zoo: Zoo, tmp_path: Path) -> None:
    for model in ("names", "mnist-mlp", "wine"):
        root = zoo.exported(model)
    ran = run_snippet("serve.sh", tmp_path, PORT=str(free_port()), TORCHZOO_ARTIFACTS=str(root), timeout=300)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    ready, metadata, v1, v2 = json_documents(ran.stdout)
    assert ready == {"ready": True}
    assert metadata["inputs"] == [{"name": "letters", "datatype": "FP32", "shape": [-1, -1, 57]}]
    assert v1 == {"predictions": load(root / "names").predict(["Rossi", "Nguyen"])}
    assert v2["id"] == "1"
    wine = load(root / "wine")
    logits = wine.run([np.zeros((1, 13), np.float32)])[0]
    output = v2["outputs"][0]
    assert output["name"] == wine.manifest["outputs"][0]["name"] and output["shape"] == list(logits.shape)
    np.testing.assert_allclose(output["data"], logits.ravel(), rtol=0, atol=1e-6)


@pytest.mark.slow
def test_serve_tritonclient_snippet(zoo: Zoo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = zoo.exported("mnist-mlp")
    with serving(root, "mnist-mlp", log=tmp_path / "serve.log") as server:
        monkeypatch.setenv("TORCHZOO_URL", server.url.removeprefix("http://"))
        namespace = runpy.run_path(str(SNIPPETS / "serve_tritonclient.py"), run_name="__main__")
    expected = load(root / "mnist-mlp").run([np.zeros((1, 1, 28, 28), np.float32)])[0]
    np.testing.assert_allclose(namespace["logits"], expected, rtol=0, atol=1e-6)


def test_serve_grpc_snippet(zoo: Zoo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = zoo.exported("mnist-mlp")
    port = free_port()
    with serving(root, "mnist-mlp", "--grpc-port", str(port), log=tmp_path / "serve.log"):
        monkeypatch.setenv("TORCHZOO_GRPC", f"127.0.0.1:{port}")
        namespace = runpy.run_path(str(SNIPPETS / "serve_grpc.py"), run_name="__main__")
    expected = load(root / "mnist-mlp").run([np.zeros((1, 1, 28, 28), np.float32)])[0]
    np.testing.assert_allclose(namespace["logits"], expected, rtol=0, atol=1e-6)
    assert namespace["stats"]["inference_count"] == "1"  # protobuf's JSON writes 64-bit integers as strings


@pytest.mark.slow
def test_triton_snippets(zoo: Zoo, tmp_path: Path) -> None:
    artifacts_in(tmp_path, zoo.exported("names"), "names")
    ran = run_snippet("triton_export.sh", tmp_path)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    repository = tmp_path / "triton-repo"
    assert (repository / "names" / "1" / "model.onnx").read_bytes() == (
        tmp_path / "artifacts" / "names" / "model.onnx"
    ).read_bytes()
    config = (repository / "names" / "config.pbtxt").read_text()
    assert 'platform: "onnxruntime_onnx"' in config and "max_batch_size: 64" in config
    # Docker and NVIDIA's image are not available to the tests: the command is checked, and it mounts the
    # repository the export snippet writes
    docker = (SNIPPETS / "triton_docker.sh").read_text()
    assert subprocess.run(["bash", "-n", str(SNIPPETS / "triton_docker.sh")]).returncode == 0
    assert '-v "$PWD/triton-repo:/models"' in docker and "--model-repository=/models" in docker
    assert "--repository triton-repo" in (SNIPPETS / "triton_export.sh").read_text()


@pytest.mark.slow
def test_ray_serve_local_snippet(zoo: Zoo, tmp_path: Path) -> None:
    for model in ("names", "mnist-mlp"):
        root = zoo.exported(model)
    ran = run_snippet("ray_serve_local.sh", tmp_path, PORT=str(free_port()), TORCHZOO_ARTIFACTS=str(root))
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    headers = dict(re.findall(r"^(x-torchzoo-[\w-]+): (\S+)", ran.stdout, flags=re.M | re.I))
    assert {"x-torchzoo-node", "x-torchzoo-node-ip", "x-torchzoo-replica"} <= {k.lower() for k in headers}
    documents = json_documents(ran.stdout)
    assert documents[0] == {"ready": True}
    assert documents[1]["name"] == "mnist-mlp" and documents[1]["inputs"][0]["shape"] == [-1, 1, 28, 28]
    assert documents[2] == {"predictions": load(root / "names").predict(["Rossi"])}


@pytest.mark.slow
def test_predict_batch_snippets(zoo: Zoo, tmp_path: Path) -> None:
    for model in ("names", "mnist-mlp", "wine"):
        root = zoo.exported(model)
    images, targets = heldout_digits(root, 6)
    (tmp_path / "digits").mkdir()
    for i, (image, target) in enumerate(zip(images, targets, strict=True)):
        Image.fromarray(image).save(tmp_path / "digits" / f"{i}_{int(target)}.png")
    header = "alcohol,malic_acid,ash,alcalinity,magnesium,phenols,flavanoids,nonflavanoid,proanthocyanins,color,hue"
    first = "14.23,1.71,2.43,15.6,127,2.8,3.06,.28,2.29,5.64,1.04,3.92,1065"
    (tmp_path / "samples.csv").write_text(f"{header},od,proline\n{first}\n{WINE_ROW}\n")
    (tmp_path / "surnames.txt").write_text("Rossi\nNakamura\n\nNguyen\n")

    ran = run_snippet("predict_batch.sh", tmp_path, TORCHZOO_ARTIFACTS=str(root))
    assert ran.returncode == 1, ran.stdout[-3000:] + ran.stderr[-3000:]  # 1: names.jsonl has an error row
    rows = {name: [json.loads(line) for line in (tmp_path / f"{name}.jsonl").read_text().splitlines()]
            for name in ("digits", "wine", "names")}  # fmt: skip

    files = sorted(f"digits/{p.name}" for p in (tmp_path / "digits").iterdir())
    assert [row["file"] for row in rows["digits"]] == files
    expected = load(root / "mnist-mlp").predict([str(tmp_path / f) for f in files])
    assert [row["label"] for row in rows["digits"]] == [row["label"] for row in expected]

    assert [row["line"] for row in rows["wine"]] == [2, 3] and all(len(row["top"]) == 1 for row in rows["wine"])
    expected = load(root / "wine").predict([[float(x) for x in WINE_ROW.split(",")]], top_k=1)
    assert rows["wine"][1]["label"] == expected[0]["label"]

    names = rows["names"]
    assert [row["line"] for row in names] == [1, 2, 3, 4]
    assert names[2]["input"] == "" and names[2]["error"].startswith("name '' has no letters")
    expected = load(root / "names").predict(["Rossi", "Nakamura", "Nguyen"])
    assert_same_predictions([names[i] for i in (0, 1, 3)], expected)

    ray = run_snippet("predict_batch_ray.sh", tmp_path, TORCHZOO_ARTIFACTS=str(root))
    assert ray.returncode == 0, ray.stdout[-3000:] + ray.stderr[-3000:]
    assert (tmp_path / "digits-ray.jsonl").read_bytes() == (tmp_path / "digits.jsonl").read_bytes()


@pytest.mark.slow
def test_sign_snippet(zoo: Zoo, tmp_path: Path) -> None:
    artifacts = artifacts_in(tmp_path, zoo.exported("wine"), "wine")
    ran = run_snippet("sign.sh", tmp_path)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert (artifacts / "wine" / "model.sig").is_file()
    signed = load(artifacts / "wine", trusted_keys=[tmp_path / "pub.pem"])
    label = signed.predict([[float(x) for x in WINE_ROW.split(",")]])[0]["label"]
    assert re.search(rf"\s{label}\s", ran.stdout), ran.stdout[-2000:]  # torchzoo predict --require-signature


@pytest.mark.slow
def test_own_model_snippets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """The README's "Your own model": the Python snippet packages a module, the shell snippet exports the program it
    saved, verifies it and predicts; both artifacts answer as the module does."""
    import torch

    monkeypatch.chdir(tmp_path)
    namespace = runpy.run_path(str(SNIPPETS / "own_model.py"), run_name="__main__")
    printed = capsys.readouterr().out
    assert "onnx: pass" in printed and "pt2: pass" in printed
    ran = run_snippet("own_model_pt2.sh", tmp_path, TORCHZOO_ARTIFACTS=str(tmp_path / "artifacts"))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "my-net-pt2" in ran.stdout and "FAIL" not in ran.stdout
    x = np.load(tmp_path / "x.npy")
    with torch.no_grad():
        logits = namespace["model"].eval()(torch.from_numpy(x)).numpy()
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    for name in ("my-net", "my-net-pt2"):
        results = load(tmp_path / "artifacts" / name).predict(x)
        got = [{t["label"]: t["probability"] for t in r["top"]} for r in results]
        for row, expected in zip(got, probabilities, strict=True):
            for index, label in enumerate(["cat", "dog", "bird"]):
                assert abs(row[label] - expected[index]) < 1e-5
