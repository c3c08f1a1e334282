"""Signed artifacts: ``torchzoo sign`` and the OpenSSF ``model_signing`` tool accept each other's signatures;
a missing signature, the wrong key, a byte changed or a file added after signing are refused (exit 2) before
any file is used, through the CLI and through ``load(dir, trusted_keys=...)``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from test_hostile import IDENTITY, _refused, _toy

from torchzoo.core import artifact
from torchzoo.core.errors import SignatureError
from torchzoo.serve_cli.predictor import Predictor

from support import Zoo, run_cli

TIMEOUT = 60
MODEL_SIGNING = [sys.executable, "-m", "model_signing"]


def _keys(directory: Path, name: str) -> tuple[Path, Path]:
    """A prime256v1 (ECDSA P-256) key pair as PEM files: (private, public)."""
    key = ec.generate_private_key(ec.SECP256R1())
    private, public = directory / f"{name}.pem", directory / f"{name}.pub.pem"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private, public


@pytest.fixture
def signed(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A toy artifact signed by ``torchzoo sign``: (directory, private key, public key)."""
    private, public = _keys(tmp_path, "key")
    directory = _toy(tmp_path / "toy", IDENTITY)
    result = run_cli("sign", str(directory), "--key", str(private), timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert (directory / "model.sig").is_file()
    return directory, private, public


def _predict_signed(directory: Path, public: Path, *extra: str) -> subprocess.CompletedProcess:
    return run_cli(
        "predict", str(directory), "1,3", "--require-signature", "--key", str(public), *extra, timeout=TIMEOUT
    )


def test_model_signing_verifies_torchzoo_signatures(signed: tuple[Path, Path, Path]) -> None:
    directory, _, public = signed
    command = [*MODEL_SIGNING, "verify", "key", str(directory), "--signature", str(directory / "model.sig")]
    result = subprocess.run([*command, "--public_key", str(public)], capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0 and "Verification succeeded" in result.stdout, result.stderr
    result = _predict_signed(directory, public, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["results"][0]["label"] == "yes"
    assert Predictor(directory, "cpu", trusted_keys=[public]).predict(["1,3"])[0]["label"] == "yes"


def test_torchzoo_verifies_model_signing_signatures(tmp_path: Path) -> None:
    private, public = _keys(tmp_path, "key")
    directory = _toy(tmp_path / "toy", IDENTITY)
    signature = directory / "model.sig"
    command = [*MODEL_SIGNING, "sign", "key", str(directory), "--signature", str(signature)]
    result = subprocess.run([*command, "--private_key", str(private)], capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert _predict_signed(directory, public).returncode == 0
    from torchzoo.core.signing import verify_signature

    assert verify_signature(directory, [public]) == str(public)


def test_missing_signature_is_refused(tmp_path: Path) -> None:
    _, public = _keys(tmp_path, "key")
    directory = _toy(tmp_path / "toy", IDENTITY)
    _refused(
        run_cli("predict", str(directory), "1,3", "--require-signature", "--key", str(public), timeout=TIMEOUT),
        "not signed",
    )
    with pytest.raises(SignatureError, match="not signed"):
        Predictor(directory, "cpu", trusted_keys=[public])
    _refused(run_cli("predict", str(directory), "1,3", "--require-signature", timeout=TIMEOUT), "--key")
    with pytest.raises(SignatureError, match="at least one"):
        Predictor(directory, "cpu", trusted_keys=[])


def test_wrong_key_is_refused(signed: tuple[Path, Path, Path], tmp_path: Path) -> None:
    directory, _, _ = signed
    _, other = _keys(tmp_path, "other")
    _refused(
        run_cli("predict", str(directory), "1,3", "--require-signature", "--key", str(other), timeout=TIMEOUT),
        "does not match",
    )
    with pytest.raises(SignatureError, match="does not match"):
        Predictor(directory, "cpu", trusted_keys=[other])
    not_a_key = tmp_path / "garbage.pem"
    not_a_key.write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    with pytest.raises(SignatureError):
        Predictor(directory, "cpu", trusted_keys=[not_a_key])


def test_a_byte_changed_after_signing_is_refused(signed: tuple[Path, Path, Path]) -> None:
    directory, _, public = signed
    for name in (artifact.ONNX, artifact.MANIFEST, "model.sig"):
        copy = directory.with_name(f"changed-{name}")
        shutil.copytree(directory, copy)
        data = bytearray((copy / name).read_bytes())
        data[len(data) // 2] ^= 0x01
        (copy / name).write_bytes(bytes(data))
        _refused(_predict_signed(copy, public))
        with pytest.raises(SignatureError):
            Predictor(copy, "cpu", trusted_keys=[public])


def test_a_file_added_after_signing_is_refused(signed: tuple[Path, Path, Path]) -> None:
    directory, _, public = signed
    (directory / "extra.txt").write_text("added later")
    _refused(_predict_signed(directory, public), "does not match")
    (directory / "extra.txt").unlink()
    (directory / "sub").mkdir()
    _refused(_predict_signed(directory, public), "regular files only")
    (directory / "sub").rmdir()
    (directory / "link").symlink_to(directory / artifact.ONNX)
    with pytest.raises(SignatureError, match="regular files only"):
        Predictor(directory, "cpu", trusted_keys=[public])


def test_signature_ignoring_a_present_file_is_refused(tmp_path: Path) -> None:
    """A signature made with --ignore-paths leaves that file unsigned: refused although the tool accepts it."""
    private, public = _keys(tmp_path, "key")
    directory = _toy(tmp_path / "toy", IDENTITY)
    signature = directory / "model.sig"
    command = [*MODEL_SIGNING, "sign", "key", str(directory), "--signature", str(signature)]
    command += ["--private_key", str(private), "--ignore-paths", str(directory / artifact.ONNX)]
    assert subprocess.run(command, capture_output=True, timeout=TIMEOUT).returncode == 0
    with pytest.raises(SignatureError, match=r"does not cover model\.onnx"):
        Predictor(directory, "cpu", trusted_keys=[public])


def test_without_the_sign_extra_says_what_to_install(signed: tuple[Path, Path, Path], tmp_path: Path) -> None:
    directory, _, public = signed
    blocker = tmp_path / "blocker" / "model_signing"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('blocked for the test', name='model_signing')\n")
    result = run_cli(
        "predict",
        str(directory),
        "1,3",
        "--require-signature",
        "--key",
        str(public),
        env={"PYTHONPATH": str(blocker.parent)},
        timeout=TIMEOUT,
    )
    _refused(result, "pip install 'torchzoo[sign]'")


def test_verify_key_checks_the_signature_first(zoo: Zoo, tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(zoo.exported("wine") / "wine", root / "wine")
    private, public = _keys(tmp_path, "key")
    _, other = _keys(tmp_path, "other")
    assert run_cli("sign", "wine", "--key", str(private), "--artifacts-dir", str(root), timeout=TIMEOUT).returncode == 0
    result = run_cli("verify", "wine", "--key", str(public), "--artifacts-dir", str(root), "--json", timeout=120)
    assert result.returncode == 0 and json.loads(result.stdout)["passed"], result.stdout + result.stderr
    _refused(
        run_cli("verify", "wine", "--key", str(other), "--artifacts-dir", str(root), timeout=TIMEOUT), "does not match"
    )
    # re-exporting drops the now stale signature instead of carrying it into the new version
    assert run_cli("export", "wine", "--format", "onnx", "--artifacts-dir", str(root), timeout=600).returncode == 0
    assert not (root / "wine" / "model.sig").exists()


def test_sign_refuses_a_damaged_or_padded_artifact(zoo: Zoo, tmp_path: Path) -> None:
    private, _ = _keys(tmp_path, "key")
    directory = tmp_path / "wine"
    shutil.copytree(zoo.exported("wine") / "wine", directory)
    (directory / "notes.txt").write_text("not part of the artifact")
    _refused(run_cli("sign", str(directory), "--key", str(private), timeout=TIMEOUT), "does not list")
    (directory / "notes.txt").unlink()
    with open(directory / artifact.ONNX, "ab") as fh:
        fh.write(b"\0")
    _refused(run_cli("sign", str(directory), "--key", str(private), timeout=TIMEOUT), "does not match the sha256")
    assert not (directory / "model.sig").exists()
