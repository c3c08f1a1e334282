"""Your own model (issue #28), the export side: ``torchzoo.package`` from Python and ``torchzoo export PATH.pt2`` /
``MODULE:FACTORY`` from the command line make artifacts whose every format passes the same checks as the zoo's,
``verify`` re-checks them from their files, and bad input is one line with exit 2. The runtime side (predict,
load, serve, predict-batch) is tests/test_own_runtime.py; Triton and the JS client tests/test_own_deploy.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import own_models
import pytest
import torch
from torch import nn

import torchzoo
from torchzoo.core import artifact
from torchzoo.core.errors import UserInputError
from torchzoo.export.package import ExportFailed
from torchzoo.export.user_sources import package_program

from support import run_cli

MODELS = list(own_models.BUILDERS)


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("own")
    for name in MODELS:
        own_models.package(name, root)
    return root


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("programs")
    for name in MODELS:
        own_models.save_program(name, folder / f"{name}.pt2")
    return folder


def _eager(name: str, inputs: tuple[np.ndarray, ...]) -> list[np.ndarray]:
    model, _, _ = own_models.build(name)
    with torch.no_grad():
        out = model.eval()(*(torch.from_numpy(a) for a in inputs))
    return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_packaged_from_python_every_format_passes_and_verify_rechecks_it(packaged: Path, name: str) -> None:
    directory = packaged / name
    manifest = artifact.read_manifest(directory)  # the runtime's own schema check
    assert manifest["origin"]["kind"] == "python" and manifest["preprocessing"] == {"kind": "tensors"}
    equivalence = json.loads((directory / artifact.EQUIVALENCE).read_text())
    for fmt, report in equivalence["formats"].items():
        assert report["passed"] or report["refused"], (fmt, report["failures"])
    assert {"onnx", "pt2", "state_dict"} <= set(manifest["formats"])
    result = run_cli("verify", name, "--artifacts-dir", str(packaged), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    checks = json.loads(result.stdout)["checks"]
    assert {c["format"] for c in checks} == set(manifest["formats"]) and all(c["passed"] for c in checks)


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_a_saved_program_exports_from_the_command_line(programs: Path, tmp_path: Path, name: str) -> None:
    _, _, keywords = own_models.build(name)
    args = ["export", str(programs / f"{name}.pt2"), "--task", keywords["task"], "--artifacts-dir", str(tmp_path)]
    if keywords.get("labels"):
        (tmp_path / "labels.txt").write_text("\n".join(keywords["labels"]) + "\n")
        args += ["--labels", str(tmp_path / "labels.txt")]
    result = run_cli(*args, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = artifact.read_manifest(tmp_path / name)
    labels = manifest["labels"]
    assert manifest["origin"]["kind"] == "pt2" and labels == keywords.get("labels", labels if labels else [])
    if keywords["task"] == "classification" and "labels" not in keywords:  # none given: the class indices
        assert labels == [str(i) for i in range(manifest["outputs"][0]["shape"][1])]
    with np.load(tmp_path / name / artifact.CHECK_INPUTS) as npz:  # the eager outputs saved are the model's own
        inputs = tuple(npz[f"example/{i}"] for i in range(len(manifest["inputs"])))
        saved = [npz[f"example/out/{i}"] for i in range(len(manifest["outputs"]))]
    for got, want in zip(saved, _eager(name, inputs), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)
    assert run_cli("verify", name, "--artifacts-dir", str(tmp_path)).returncode == 0


@pytest.mark.slow
def test_dynamic_dims_keep_their_names_and_every_axis_is_checked_at_both_ends(packaged: Path) -> None:
    directory = packaged / "tokens-mask"
    manifest = artifact.read_manifest(directory)
    assert [i["shape"] for i in manifest["inputs"]] == [["batch", "seq"], ["batch", "seq"]]
    assert [o["shape"] for o in manifest["outputs"]] == [["batch", 3], ["batch", "seq", 8]]
    assert [i["dtype"] for i in manifest["inputs"]] == ["int64", "float32"]
    graph = onnx.load(str(directory / artifact.ONNX)).graph
    dims = {
        v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in [*graph.input, *graph.output]
    }
    assert dims == {
        "ids": ["batch", "seq"],
        "mask": ["batch", "seq"],
        "scores": ["batch", 3],
        "states": ["batch", "seq", 8],
    }
    program = torch.export.load(str(directory / artifact.PT2))
    bounds = sorted((int(r.lower), int(r.upper)) for r in program.range_constraints.values() if r.upper < 1 << 20)
    assert (1, 32) in bounds or (2, 32) in bounds  # the declared seq range travels in the program
    cases = {c["name"]: c["input_shapes"] for c in json.loads((directory / artifact.EQUIVALENCE).read_text())["cases"]}
    assert cases["random_b1"][0][0] == 1 and cases["random_b16"][0][0] == 16
    assert cases["random_seq1"][0][1] == 1 and cases["random_seq32"][0][1] == 32
    with np.load(directory / artifact.CHECK_INPUTS) as npz:  # random ids stay valid embedding rows
        ids = np.concatenate([npz[f"{c}/0"].ravel() for c in cases])
    assert ids.min() >= 0 and ids.max() <= own_models.VOCAB - 1


@pytest.mark.slow
def test_a_model_left_in_train_mode_is_exported_and_checked_in_eval_mode(tmp_path: Path) -> None:
    model, example, keywords = own_models.build("small-conv")
    assert model.training
    done = torchzoo.package(model, example, name="conv", artifacts_dir=tmp_path, **keywords)
    assert model.training  # the user's module is handed back in the mode it came in
    manifest = artifact.read_manifest(done.directory)
    assert manifest["origin"]["was_training"] is True and manifest["mode"].startswith("eval")
    assert "fp16" in manifest["variants"]["published"]  # a held-out set was given: the variant was checked
    import onnxruntime

    session = onnxruntime.InferenceSession(str(done.directory / artifact.ONNX), providers=["CPUExecutionProvider"])
    x = example[0].numpy()
    (got,) = session.run(None, {"image": x})
    with torch.no_grad():
        np.testing.assert_allclose(got, model.eval()(example[0]).numpy(), atol=1e-5)


class Noisy(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.rand_like(x)


class Counter(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("calls", torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return x * 2


class Branchy(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:  # data-dependent control flow: torch.export cannot capture it
            return x * 2
        return x - 1


def test_randomness_at_inference_fails_naming_the_output(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match=r"output 'output' differs between two runs"):
        torchzoo.package(Noisy(), (torch.randn(2, 3),), name="noisy", artifacts_dir=tmp_path)
    assert not (tmp_path / "noisy").exists()


def test_a_forward_that_changes_state_fails_naming_the_tensor(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match=r"changed its state \('calls'\)"):
        torchzoo.package(Counter(), (torch.randn(2, 3),), name="counter", artifacts_dir=tmp_path)
    assert not (tmp_path / "counter").exists()


@pytest.mark.slow
def test_a_format_the_exporter_cannot_make_is_named_with_its_first_line_and_nothing_is_published(
    tmp_path: Path,
) -> None:
    with pytest.raises(ExportFailed) as failed:
        torchzoo.package(Branchy(), (torch.randn(2, 3),), name="branchy", artifacts_dir=tmp_path)
    reports = {r.format: r for r in failed.value.outcome.reports}
    assert reports["torchscript"].passed  # script keeps the branch
    assert reports["pt2"].refused and "pt2 export failed" in reports["pt2"].refused
    assert reports["onnx"].error and "\n" not in reports["onnx"].error
    assert "onnx: error:" in str(failed.value) and not (tmp_path / "branchy").exists()


@pytest.mark.slow
def test_torchscript_that_cannot_be_made_is_refused_and_the_rest_published(
    packaged: Path, programs: Path, tmp_path: Path
) -> None:
    done = package_program(programs / "encoder.pt2", name="encoder-program", artifacts_dir=tmp_path)
    assert set(done.refused) == {"torchscript"} and "traced TorchScript differs" in done.refused["torchscript"]
    manifest = artifact.read_manifest(done.directory)
    assert "torchscript" not in manifest["formats"] and manifest["refused_formats"]["torchscript"]
    assert not (done.directory / artifact.TORCHSCRIPT).exists()


@pytest.mark.slow
def test_a_transformers_model_nobody_here_wrote_packages_with_every_format(tmp_path: Path) -> None:
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=3,
    )
    model = BertForSequenceClassification(config)
    ids, mask = torch.randint(0, 100, (2, 10)), torch.ones(2, 10, dtype=torch.int64)
    done = torchzoo.package(
        model,
        {"input_ids": ids, "attention_mask": mask},
        name="tiny-bert",
        task="classification",
        labels=["a", "b", "c"],
        dynamic_dims={"input_ids": {1: ("seq", 2, 64)}, "attention_mask": {1: "seq"}},
        artifacts_dir=tmp_path,
    )
    assert not done.refused and all(r.passed for r in done.outcome.reports)
    assert artifact.read_manifest(done.directory)["outputs"][0]["name"] == "logits"


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def factory_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("factory")
    import shutil

    from own_models import user_nets

    shutil.copy(Path(user_nets.__file__), folder / "user_nets.py")
    torch.manual_seed(0)
    torch.save(user_nets.build().state_dict(), folder / "weights.pt")
    torch.save({"other": torch.zeros(3)}, folder / "other.pt")
    _write(folder / "labels2.txt", "yes\nno\n")
    _write(folder / "not-a-program.pt2", "hello")
    return folder


FACTORY = [
    "user_nets:build",
    "--weights",
    "weights.pt",
    "--input",
    "ids:int64[batch,seq]",
    "--input",
    "mask:float32[batch,seq]",
    "--dim",
    "seq=1:16",
    "--values",
    "ids=0:19",
]


@pytest.mark.slow
def test_a_factory_with_weights_exports_and_verifies(factory_dir: Path) -> None:
    root = factory_dir / "artifacts"
    result = _cli(factory_dir, *FACTORY, "--task", "classification", "--artifacts-dir", str(root), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = artifact.read_manifest(root / "user-nets-build")
    assert manifest["origin"] == {**manifest["origin"], "kind": "factory", "factory": "user_nets:build"}
    assert manifest["inputs"][0] == {"name": "ids", "shape": ["batch", "seq"], "dtype": "int64", "description": ""}
    assert _cli(factory_dir, "verify", "user-nets-build", "--artifacts-dir", str(root)).returncode == 0


def _cli(cwd: Path, *args: str) -> object:
    import subprocess
    import sys

    from support import ROOT, cli_env

    command = args if args[0] in ("verify",) else ("export", *args)
    return subprocess.run(
        [sys.executable, "-c", "from torchzoo.cli import main; main()", *command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env=cli_env(PYTHONPATH=str(ROOT / "src")),
    )


BAD = [
    (["user_nets:build", "--weights", "weights.pt", "--input", "ids:int64(batch)"], "expected NAME:DTYPE[DIMS]"),
    (["user_nets:build", "--weights", "weights.pt", "--input", "x:float16[batch,2]"], "dtype 'float16' is not one of"),
    (
        ["user_nets:broken", "--weights", "weights.pt", "--input", "x:float32[batch,2]"],
        "the factory raised RuntimeError: needs a GPU",
    ),
    (["user_nets:missing", "--weights", "weights.pt", "--input", "x:float32[batch,2]"], "cannot import it"),
    ([*FACTORY[:1], "--weights", "other.pt", *FACTORY[3:]], "the weights do not fit user_nets:build"),
    ([*FACTORY[:1], "--weights", "nothing.pt", *FACTORY[3:]], "--weights nothing.pt: no such file"),
    (["not-a-program.pt2"], "not an ExportedProgram saved with torch.export.save"),
    ([*FACTORY, "--task", "classification", "--labels", "labels2.txt"], "labels: 2 labels for an output of width 3"),
    ([*FACTORY, "--name", "mnist-mlp"], "name 'mnist-mlp' is a zoo model's"),
    (["names", "--task", "tensor"], "--task goes with your own model"),
    ([*FACTORY[:-2]], "an int64 input needs its valid values: --values ids=LOW:HIGH"),
    ([*FACTORY, "--task", "binary"], "a binary model outputs one score per sample, not 3"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[m[:30] for _, m in BAD])
def test_bad_user_input_is_one_line_and_exit_2(factory_dir: Path, args: list[str], message: str) -> None:
    result = _cli(factory_dir, *args, "--artifacts-dir", str(factory_dir / "bad-artifacts"))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and message in lines[0], result.stderr
    assert not any((factory_dir / "bad-artifacts").glob("*/manifest.json"))


class Gate(nn.Module):
    """A bool input: keep the doubled value where ``keep`` is set."""

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        return torch.where(keep, x * 2, x)


class LogSoftmaxNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.linear(x), dim=1)


@pytest.mark.slow
def test_a_bool_input_is_checked_and_served_as_bool(tmp_path: Path) -> None:
    from torchzoo.serve_cli import load

    x, keep = torch.randn(4, 5), torch.tensor([[True, False, True, False, True]] * 4)
    done = torchzoo.package(Gate(), (x, keep), name="gate", artifacts_dir=tmp_path, formats=["pt2", "onnx"])
    manifest = artifact.read_manifest(done.directory)
    assert [i["dtype"] for i in manifest["inputs"]] == ["float32", "bool"] and manifest["task"] == "tensor"
    with np.load(done.directory / artifact.CHECK_INPUTS) as npz:  # random cases hold both values the examples hold
        assert {bool(v) for v in np.unique(npz["random_b16/1"])} == {True, False}
    keep_any = np.random.default_rng(1).integers(0, 2, (3, 5)).astype(bool)
    values = np.random.default_rng(2).standard_normal((3, 5)).astype(np.float32)
    (result,) = load(done.directory).predict({"x": values[:1], "keep": keep_any[:1]})
    np.testing.assert_allclose(result["outputs"]["output"], np.where(keep_any[0], values[0] * 2, values[0]), atol=1e-6)


@pytest.mark.slow
def test_log_probabilities_are_shown_as_probabilities(tmp_path: Path) -> None:
    from torchzoo.serve_cli import load

    torch.manual_seed(3)
    model, x = LogSoftmaxNet(), torch.randn(6, 4)
    done = torchzoo.package(
        model, (x,), name="logp", task="classification", labels=["a", "b", "c"], output="log_probs",
        artifacts_dir=tmp_path, formats=["onnx"],
    )  # fmt: skip
    assert artifact.read_manifest(done.directory)["postprocessing"]["transform"] == "exp"
    results = load(done.directory).predict(x.numpy(), top_k=3)
    with torch.no_grad():
        expected = model(x).exp().numpy()
    for row, want in zip(results, expected, strict=True):
        got = {t["label"]: t["probability"] for t in row["top"]}
        np.testing.assert_allclose([got["a"], got["b"], got["c"]], want, atol=1e-6)


@pytest.mark.slow
def test_a_signed_user_artifact_verifies_and_predicts_with_the_key(packaged: Path, tmp_path: Path) -> None:
    from test_signing import _keys

    private, public = _keys(tmp_path, "user")
    root = tmp_path / "artifacts"
    shutil.copytree(packaged / "regressor", root / "regressor")
    assert run_cli("sign", "regressor", "--key", str(private), "--artifacts-dir", str(root)).returncode == 0
    assert (root / "regressor" / "model.sig").is_file()
    result = run_cli("verify", "regressor", "--key", str(public), "--artifacts-dir", str(root))
    assert result.returncode == 0, result.stdout + result.stderr
    np.save(tmp_path / "rows.npy", np.ones((2, 4)))
    predicted = run_cli(
        "predict", "regressor", str(tmp_path / "rows.npy"), "--require-signature", "--key", str(public),
        "--artifacts-dir", str(root), "--json",
    )  # fmt: skip
    assert predicted.returncode == 0, predicted.stderr
    (want,) = _eager("regressor", (np.ones((2, 4)),))
    got = [r["value"] for r in json.loads(predicted.stdout)["results"]]
    np.testing.assert_allclose(got, want.ravel(), atol=1e-9)
    _, other_public = _keys(tmp_path, "other")
    refused = run_cli("verify", "regressor", "--key", str(other_public), "--artifacts-dir", str(root))
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
