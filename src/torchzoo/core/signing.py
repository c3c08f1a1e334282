"""Signed artifacts: the OpenSSF ``model-signing`` format with its private-key (ECDSA) method, so the
``model_signing`` command-line tool verifies torchzoo's signatures and torchzoo verifies the tool's.

The signature is ``model.sig`` inside the artifact directory and covers every other file in it (the
manifest included). Verifying checks, before any file is used: that the directory holds only regular files
(no links, FIFOs, devices or subdirectories), that ``model.sig`` verifies with one of the trusted public keys,
that the signed file list is exactly the directory's (a file added, removed or changed after signing is
refused), and that the signature ignores nothing that is present. ``model_signing`` is imported only here,
lazily: it is the ``sign`` extra (``pip install 'torchzoo[sign]'``), not part of the runtime's default install.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torchzoo.core.errors import SignatureError, UserInputError, first_line
from torchzoo.core.limits import MAX_ARTIFACT_FILES, MAX_SIGNATURE_BYTES
from torchzoo.core.safe_io import is_plain_name, read_artifact_file, read_input_file
from torchzoo.core.text_codec import printable

SIGNATURE = "model.sig"
INSTALL = "pip install 'torchzoo[sign]' (model-signing and pyopenssl)"
#: paths model_signing leaves out of a signature by default; none may be present in a signed artifact
_GIT_PATHS = (".git", ".gitattributes", ".github", ".gitignore")


def _model_signing() -> Any:
    try:
        import model_signing
        import OpenSSL  # noqa: F401  (model-signing 1.1.1 imports it without declaring it)
    except ImportError as exc:
        raise SignatureError(
            f"checking or making signatures needs the sign extra: {INSTALL} ({exc.name} missing)"
        ) from None
    return model_signing


def _entries(directory: Path) -> list[str]:
    """The directory's file names; anything but a regular file with a plain name is refused."""
    shown = printable(str(directory))
    try:
        with os.scandir(directory) as scan:
            entries = list(scan)
    except OSError as exc:
        raise SignatureError(f"cannot read the artifact directory {shown} ({exc.strerror})") from None
    if len(entries) > MAX_ARTIFACT_FILES + 1:
        raise SignatureError(f"{shown} holds {len(entries)} entries; an artifact has at most {MAX_ARTIFACT_FILES}")
    names = []
    for entry in entries:
        mode = entry.stat(follow_symlinks=False).st_mode
        if not stat.S_ISREG(mode) or not is_plain_name(entry.name):
            raise SignatureError(
                f"{shown}/{printable(entry.name)} is not a regular file with a plain name; a signed artifact holds "
                "regular files only"
            )
        names.append(entry.name)
    return sorted(names)


def _key_bytes(key: str | Path, what: str) -> bytes:
    return read_input_file(key, MAX_SIGNATURE_BYTES, what)


def sign_artifact(directory: Path, private_key: str | Path) -> Path:
    """Sign every file of ``directory`` with an ECDSA private key (PEM); writes ``directory/model.sig``."""
    ms = _model_signing()
    names = [n for n in _entries(directory) if n != SIGNATURE]
    if "manifest.json" not in names:
        raise UserInputError(f"{printable(str(directory))} has no manifest.json; export the model before signing it")
    key = _key_bytes(private_key, "private key")
    target = directory / SIGNATURE
    with tempfile.TemporaryDirectory() as scratch:
        key_path, signature = Path(scratch) / "key.pem", Path(scratch) / SIGNATURE
        key_path.write_bytes(key)
        try:
            ms.signing.Config().use_elliptic_key_signer(private_key=key_path).set_hashing_config(
                ms.hashing.Config().set_ignored_paths(paths=[SIGNATURE], ignore_git_paths=True)
            ).sign(directory, signature)
        except Exception as exc:  # a key that is not an EC private key, an unreadable file...
            raise SignatureError(f"cannot sign {printable(str(directory))}: {first_line(exc)}") from None
        tmp = directory / f".{SIGNATURE}.tmp"
        tmp.write_bytes(signature.read_bytes())
        os.replace(tmp, target)
    return target


def _signed_payload(directory: Path) -> dict[str, Any]:
    """The in-toto statement inside ``model.sig`` (read only after the signature verified)."""
    bundle = json.loads(read_artifact_file(directory, SIGNATURE, MAX_SIGNATURE_BYTES))
    return json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))


def verify_signature(directory: Path, public_keys: Sequence[str | Path]) -> str:
    """Check ``directory/model.sig`` against the trusted public keys (PEM); returns the key that verified.

    Raises :class:`SignatureError` (exit 2) when the signature is missing, does not match any key, does not
    cover exactly the directory's files, or when the ``sign`` extra is not installed."""
    shown = printable(str(directory))
    if not public_keys:
        raise SignatureError("a signature check needs at least one trusted public key (--key PUBLIC_KEY.pem)")
    if not directory.is_dir():
        raise SignatureError(f"no artifact directory {shown}")
    names = _entries(directory)
    if SIGNATURE not in names:
        raise SignatureError(f"{shown} is not signed (no {SIGNATURE}); sign it with 'torchzoo sign'")
    read_artifact_file(directory, SIGNATURE, MAX_SIGNATURE_BYTES)  # bounded, regular, before model_signing reads it
    ms = _model_signing()
    reasons = []
    for key in public_keys:
        key_data = _key_bytes(key, "public key")
        with tempfile.TemporaryDirectory() as scratch:
            key_path = Path(scratch) / "key.pub.pem"
            key_path.write_bytes(key_data)
            try:
                ms.verifying.Config().use_elliptic_key_verifier(public_key=key_path).set_hashing_config(
                    ms.hashing.Config().set_ignored_paths(paths=[SIGNATURE], ignore_git_paths=True)
                ).verify(directory, directory / SIGNATURE)
            except Exception as exc:
                reasons.append(first_line(exc, 160))
                continue
        _check_coverage(directory, names, shown)
        return str(key)
    raise SignatureError(f"{shown}: the signature does not match ({'; '.join(reasons)[:300]})")


def _check_coverage(directory: Path, names: list[str], shown: str) -> None:
    """The verified signature must list exactly the directory's files: nothing ignored that is present."""
    try:
        payload = _signed_payload(directory)
        signed = {r["name"] for r in payload["predicate"]["resources"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise SignatureError(f"{shown}: {SIGNATURE} is not a model-signing bundle ({type(exc).__name__})") from None
    present = set(names) - {SIGNATURE}
    if signed != present:
        unsigned = sorted(present - signed) or sorted(signed - present)
        raise SignatureError(f"{shown}: the signature does not cover {', '.join(map(printable, unsigned))[:200]}")
    if "manifest.json" not in signed:
        raise SignatureError(f"{shown}: the signature does not cover manifest.json")
