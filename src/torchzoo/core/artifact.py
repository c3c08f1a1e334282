"""The artifact directory contract, shared by train/export (writers) and serve_cli (reader). Torch-free.

An artifact directory ``artifacts/<model>/`` holds the files named below. Writers never touch it in place:
:func:`staged` builds the complete new version in ``artifacts/.staging/`` (unchanged files hard-linked
from the live version) and publishes it with one atomic directory exchange (``renameat2`` with
``RENAME_EXCHANGE``), so a process killed at any moment leaves either the old set or the new one, never
a mix. A lock file per model (``artifacts/.locks/<model>.lock``) serializes concurrent writers.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from torchzoo.core.durable import exclusive_lock
from torchzoo.core.errors import ArtifactError
from torchzoo.core.limits import MAX_JSON_BYTES, MAX_MANIFEST_BYTES
from torchzoo.core.safe_io import open_artifact_file, read_artifact_file, read_input_file
from torchzoo.core.text_codec import printable

SCHEMA_VERSION = 1
_UMASK = os.umask(0)
os.umask(_UMASK)

STATE_DICT = "model.pt"
TORCHSCRIPT = "model.torchscript.pt"
ONNX = "model.onnx"
PT2 = "model.pt2"
ONNX_INT8 = "model.int8.onnx"
ONNX_FP16 = "model.fp16.onnx"
#: every export format and the file it writes; torchzoo.export.formats holds the writer and runners of each
FORMAT_FILES = {
    "state_dict": STATE_DICT,
    "torchscript": TORCHSCRIPT,
    "pt2": PT2,
    "onnx": ONNX,
    "onnx-int8": ONNX_INT8,
    "onnx-fp16": ONNX_FP16,
}
#: the runtime's graph variants (``predict --variant``): name -> export format; "fp32" is model.onnx itself
VARIANT_FORMATS = {"fp32": "onnx", "int8": "onnx-int8", "fp16": "onnx-fp16"}
#: the held-out test subset (model-ready inputs and targets) a variant's accuracy check re-runs on
HELDOUT = "heldout.npz"
TRAIN_RECORD = "train.json"
METRICS = "metrics.json"
HISTORY = "history.json"
CURVES_PNG = "curves.png"
EQUIVALENCE = "equivalence.json"
CHECK_INPUTS = "check_inputs.npz"
MANIFEST = "manifest.json"
STAGING = ".staging"
LOCKS = ".locks"
FAILED = ".failed"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temp path beside ``target``; on success it replaces ``target``, on error it is removed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; artifacts are ordinary files
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_bytes_atomic(target: Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(target: Path, obj: Any) -> None:
    write_bytes_atomic(target, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def read_json(path: Path, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """A JSON file of the artifact tree: a regular file (never a FIFO or device) of at most ``max_bytes``."""
    return json.loads(read_input_file(path, max_bytes, "JSON").decode("utf-8"))


@contextlib.contextmanager
def locked(root: Path, model: str) -> Iterator[None]:
    """Hold the exclusive writer lock of ``root/model`` (two exports of one model never interleave)."""
    (root / LOCKS).mkdir(parents=True, exist_ok=True)
    with exclusive_lock(root / LOCKS / f"{model}.lock"):
        yield


@contextlib.contextmanager
def staged(root: Path, model: str, carry: Iterable[str] = ()) -> Iterator[Path]:
    """Yield a staging directory for a new version of ``root/model``; publish it atomically on success.

    ``carry`` names files of the live version to keep (hard-linked, so nothing is copied). On an
    exception nothing is published and the staging directory is removed; the live version is untouched.
    """
    live = root / model
    with locked(root, model):
        staging_root = root / STAGING
        staging_root.mkdir(parents=True, exist_ok=True)
        for stale in staging_root.glob(f"{model}.*"):  # left by a killed writer (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=f"{model}.", dir=staging_root))
        staging.chmod(0o777 & ~_UMASK)
        try:
            for name in carry:
                if (live / name).is_file():
                    os.link(live / name, staging / name)
            yield staging
            _publish(staging, live)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _publish(staging: Path, live: Path) -> None:
    """Make ``staging`` the live directory in one step; the old version ends up at ``staging``."""
    if not live.exists():
        os.rename(staging, live)
        return
    libc = ctypes.CDLL(None, use_errno=True)
    exchange = getattr(libc, "renameat2", None)
    at_fdcwd, rename_exchange = -100, 2
    if exchange is not None and exchange(at_fdcwd, bytes(staging), at_fdcwd, bytes(live), rename_exchange) == 0:
        return
    code = ctypes.get_errno()
    if exchange is not None and code not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        raise OSError(code, f"cannot publish {live}: {os.strerror(code)}")
    # A filesystem without RENAME_EXCHANGE: two renames (a killed process can leave no live directory,
    # but the old version stays complete beside it).
    old = staging.with_name(staging.name + ".old")
    os.rename(live, old)
    os.rename(staging, live)
    os.rename(old, staging)


def write_failure(root: Path, model: str, name: str, obj: Any) -> Path:
    """Keep a failed check's report out of the artifact set: ``root/.failed/<model>.<name>``."""
    target = root / FAILED / f"{model}.{name}"
    write_json_atomic(target, obj)
    return target


SELF_HASH = "manifest_sha256"


def manifest_digest(manifest: dict[str, Any]) -> str:
    """sha256 of the manifest's canonical JSON without its own ``manifest_sha256`` field."""
    body = {k: v for k, v in manifest.items() if k != SELF_HASH}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def seal_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest with its own digest added, so an edited manifest is detected like an edited file."""
    return {**manifest, SELF_HASH: manifest_digest(manifest)}


SIGNATURE = "model.sig"


def read_manifest(directory: Path) -> dict[str, Any]:
    """The artifact's manifest, believed only once it has passed every check: a regular file of at most
    ``MAX_MANIFEST_BYTES`` inside the directory, JSON, its own sha256, this runtime's schema version, and the
    schema (:mod:`torchzoo.core.manifest_schema`). Any failure is one ArtifactError naming the field."""
    from torchzoo.core.manifest_schema import validate

    shown = printable(str(directory / MANIFEST))
    if not directory.is_dir():
        raise ArtifactError(
            f"no artifact directory {printable(str(directory))}; create it with 'torchzoo train' + 'torchzoo export'"
        )
    if not os.path.lexists(directory / MANIFEST):
        raise ArtifactError(f"{printable(str(directory))} has no {MANIFEST}; run 'torchzoo export {directory.name}'")
    data = read_artifact_file(directory, MANIFEST, MAX_MANIFEST_BYTES)
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ArtifactError(f"{shown} is not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{shown} is not a manifest object")
    if manifest.get(SELF_HASH) != manifest_digest(manifest):
        raise ArtifactError(f"{shown} does not match its own sha256 (edited or damaged); re-run 'torchzoo export'")
    version = manifest.get("schema_version")
    if type(version) is not int or version != SCHEMA_VERSION:  # true == 1 in Python, not here
        raise ArtifactError(
            f"{shown} has schema version {printable(repr(version), 40)}; this runtime reads version {SCHEMA_VERSION} "
            "(re-export the artifact with this torchzoo)"
        )
    validate(manifest, shown)
    return manifest


def verify_files(directory: Path, manifest: dict[str, Any]) -> None:
    """Re-hash every file the manifest lists; the first that is missing or differs is an error."""
    for filename in manifest["files"]:
        verify_file(directory, manifest, filename)


def verify_file(directory: Path, manifest: dict[str, Any], filename: str) -> Path:
    """Check that ``filename`` is a regular file of the artifact with the manifest's sha256 and size."""
    _hash_listed(directory, manifest, filename, keep=False)
    return directory / filename


def read_verified(directory: Path, manifest: dict[str, Any], filename: str) -> bytes:
    """The bytes of ``filename``, checked against the manifest: what was hashed is what gets used."""
    return _hash_listed(directory, manifest, filename, keep=True)


def _hash_listed(directory: Path, manifest: dict[str, Any], filename: str, keep: bool) -> bytes:
    entry = manifest["files"].get(filename)
    shown = printable(str(directory / filename))
    if entry is None:
        raise ArtifactError(
            f"{printable(filename)} is not listed in {printable(str(directory / MANIFEST))}; re-run export"
        )
    fd = open_artifact_file(directory, filename)
    try:
        if os.fstat(fd).st_size != entry["bytes"]:
            raise ArtifactError(f"{shown} does not match the sha256 in its manifest (modified or damaged)")
        digest, chunks, left = hashlib.sha256(), [], entry["bytes"]
        while left > 0 and (block := os.read(fd, min(left, 1 << 20))):
            digest.update(block)
            left -= len(block)
            if keep:
                chunks.append(block)
    finally:
        os.close(fd)
    if left or digest.hexdigest() != entry["sha256"]:
        raise ArtifactError(f"{shown} does not match the sha256 in its manifest (modified or damaged)")
    return b"".join(chunks)
