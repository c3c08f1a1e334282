"""Write a verified artifact into a Triton Inference Server model repository (``export --format triton``).

The layout is Triton's (``model_repository.md``): ``DIR/<model>/config.pbtxt``, ``DIR/<model>/<version>/
model.onnx`` with integer versions (a new export adds the next one; none is ever overwritten),
``DIR/<model>/labels.txt`` for classifiers (the first output's ``label_filename``) and the artifact's
``manifest.json`` beside the config and inside its version. The config is a
``tritonclient.grpc.model_config_pb2.ModelConfig`` message written with protobuf's text format, so every
field is one Triton's schema has. Nothing is written before the artifact passes ``verify`` (every file's
sha256, every format's check); the version directory is staged under a name Triton ignores and renamed
into place, so a failure never leaves a half-written version.

Zoo models and a user's own (``torchzoo.package``) take the same path: the artifact is verified by
:func:`torchzoo.export.verify.verify_directory` (the zoo's check against ``model.pt``, or a user's against the
eager outputs saved at export), and the config carries every input and output with its dtype (FP32, FP64,
INT64, INT32, BOOL). A user's declared dim bounds (the manifest's ``origin.dim_bounds``) cap
``max_batch_size`` and size the warm-up request.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torchzoo.core import artifact
from torchzoo.core.durable import exclusive_lock, fsync_directory
from torchzoo.core.errors import ArtifactError, UserInputError
from torchzoo.core.limits import MAX_MANIFEST_BYTES
from torchzoo.core.safe_io import read_artifact_file
from torchzoo.core.tensor_spec import DATATYPES, dim_bounds, smallest_shape
from torchzoo.train.spec import ModelSpec

PLATFORM = "onnxruntime_onnx"
CONFIG = "config.pbtxt"
LABELS = "labels.txt"
#: the same batching defaults as ``torchzoo serve`` (--max-batch 64, --max-delay-ms 2)
MAX_BATCH_SIZE = 64
PREFERRED_BATCH_SIZES = (16, 64)
MAX_QUEUE_DELAY_US = 2000
#: Triton's data type of each manifest dtype (TYPE_ + the protocol's datatype)
DATA_TYPES = {dtype: f"TYPE_{datatype}" for dtype, datatype in DATATYPES.items()}
INSTALL = "pip install 'tritonclient[grpc]'"
_LOCK = ".torchzoo.lock"


@dataclass
class TritonOutcome:
    model: str
    version: int
    directory: Path  # DIR/<model>


def _pb() -> Any:
    try:
        from tritonclient.grpc import model_config_pb2
    except ImportError as exc:
        raise UserInputError(f"'torchzoo export --format triton' needs tritonclient ({exc.name}): {INSTALL}") from None
    return model_config_pb2


def _dims(shape: list[int | str]) -> list[int]:
    """Triton's dims: the batch axis left out (``max_batch_size`` > 0), every other named axis -1."""
    return [d if isinstance(d, int) else -1 for d in shape[1:]]


def _labelled(manifest: dict[str, Any]) -> bool:
    """Labels name the first output's columns (classification, multilabel), not a binary model's one score."""
    out = manifest["outputs"][0]["shape"]
    return manifest["task"] in ("classification", "multilabel") and len(manifest["labels"]) == out[-1]


def _batching(manifest: dict[str, Any]) -> tuple[int, int, list[int]]:
    """Warm-up batch size, ``max_batch_size`` and preferred sizes within the batch dim's declared bounds."""
    low, high = dim_bounds(manifest).get(str(manifest["inputs"][0]["shape"][0]), (1, None))
    largest = min(MAX_BATCH_SIZE, high) if high is not None else MAX_BATCH_SIZE
    low = min(low, largest)
    return low, largest, sorted({max(low, min(size, largest)) for size in PREFERRED_BATCH_SIZES})


def _data_type(pb: Any, dtype: str) -> int:
    return pb.DataType.Value(DATA_TYPES[dtype])


def model_config(manifest: dict[str, Any], gpu: bool = False, name: str | None = None) -> Any:
    """The ``ModelConfig`` of one artifact, everything taken from its (validated) manifest; ``name`` is the
    model directory's (default: the manifest's model)."""
    pb = _pb()
    warmup_batch, max_batch, preferred = _batching(manifest)
    config = pb.ModelConfig(name=name or manifest["model"], platform=PLATFORM, max_batch_size=max_batch)
    config.version_policy.latest.num_versions = 1  # Triton's default, stated: the newest version is served
    for spec in manifest["inputs"]:
        config.input.add(name=spec["name"], data_type=_data_type(pb, spec["dtype"]), dims=_dims(spec["shape"]))
    for index, spec in enumerate(manifest["outputs"]):
        output = config.output.add(
            name=spec["name"], data_type=_data_type(pb, spec["dtype"]), dims=_dims(spec["shape"])
        )
        if index == 0 and _labelled(manifest):
            output.label_filename = LABELS
    config.dynamic_batching.preferred_batch_size.extend(preferred)
    config.dynamic_batching.max_queue_delay_microseconds = MAX_QUEUE_DELAY_US
    kind = pb.ModelInstanceGroup.KIND_GPU if gpu else pb.ModelInstanceGroup.KIND_CPU
    config.instance_group.add(kind=kind, count=1)
    # zeros (false for bool) with every named axis at its smallest declared size, 1 unless declared
    warmup = config.model_warmup.add(name="zeros", batch_size=warmup_batch)
    for spec in manifest["inputs"]:
        warmup.inputs[spec["name"]].CopyFrom(
            pb.ModelWarmup.Input(
                data_type=_data_type(pb, spec["dtype"]), dims=smallest_shape(manifest, spec)[1:], zero_data=True
            )
        )
    return config


def config_text(config: Any) -> str:
    from google.protobuf import text_format

    return text_format.MessageToString(config)


def _interface(config: Any) -> tuple:
    """What every version of one Triton model must share: the config's tensors and batching limit."""
    return (
        config.platform,
        config.max_batch_size,
        tuple(i.SerializeToString(deterministic=True) for i in config.input),
        tuple(o.SerializeToString(deterministic=True) for o in config.output),
    )


def _verified(name: str, artifacts_dir: Path) -> tuple[dict[str, Any], bytes, bytes]:
    """The manifest, its bytes and the graph's bytes of an artifact that has just passed ``verify`` (a zoo
    model's or a user's own, as its manifest says)."""
    from torchzoo.export.verify import verify_directory

    directory = artifacts_dir / name
    manifest = artifact.read_manifest(directory)
    if artifact.ONNX not in manifest["files"]:
        raise ArtifactError(f"{directory} has no {artifact.ONNX}; run 'torchzoo export {name} --format onnx'")
    failed = [r for r in verify_directory(artifacts_dir, name) if not r.passed]
    if failed:
        raise ArtifactError(f"{directory} fails verification, not written to the repository: {failed[0].summary()}")
    graph = artifact.read_verified(directory, manifest, artifact.ONNX)  # the bytes hashed are the bytes copied
    manifest_bytes = read_artifact_file(directory, artifact.MANIFEST, MAX_MANIFEST_BYTES)
    if json.loads(manifest_bytes) != manifest:
        raise ArtifactError(f"{directory / artifact.MANIFEST} changed during the export; run it again")
    return manifest, manifest_bytes, graph


def _versions(model_dir: Path) -> list[int]:
    """Triton's versions: numeric directory names not starting with 0."""
    return [int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit() and p.name[0] != "0"]


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _check_compatible(model_dir: Path, config: Any, labels: str | None) -> None:
    """A new version must fit the config every version shares: the same tensors, batching and labels."""
    from google.protobuf import text_format

    path = model_dir / CONFIG
    if not path.exists():
        return
    try:
        existing = text_format.Parse(path.read_text(), _pb().ModelConfig())
    except (text_format.ParseError, UnicodeDecodeError) as exc:
        raise UserInputError(f"{path} is not a Triton model configuration ({exc})") from None
    old_labels = (model_dir / LABELS).read_text() if (model_dir / LABELS).exists() else None
    if _interface(existing) != _interface(config) or old_labels != labels:
        raise UserInputError(
            f"{model_dir} holds versions with other inputs, outputs or labels than this artifact; "
            "export to another repository or remove that model directory"
        )


def export_triton(model: str | ModelSpec, artifacts_dir: Path, repository: Path, gpu: bool = False) -> TritonOutcome:
    """Verify ``artifacts_dir/<model>`` and add it as the next version of ``repository/<model>``. ``model``: the
    artifact's directory name (a zoo model's or a user's own) or a zoo model's ``ModelSpec``."""
    name = model if isinstance(model, str) else model.name
    if repository.exists() and not repository.is_dir():
        raise UserInputError(f"--repository {repository}: not a directory")
    _pb()  # refuse before verifying when tritonclient is missing
    manifest, manifest_bytes, graph = _verified(name, artifacts_dir)
    config = model_config(manifest, gpu, name)
    labels = "".join(f"{label}\n" for label in manifest["labels"]) if _labelled(manifest) else None
    model_dir = repository / name
    fresh = not model_dir.exists()
    model_dir.mkdir(parents=True, exist_ok=True)
    try:
        with exclusive_lock(model_dir / _LOCK):  # one writer per model; a file, so Triton ignores it
            _check_compatible(model_dir, config, labels)
            version = max(_versions(model_dir), default=0) + 1
            staging = Path(tempfile.mkdtemp(prefix=".staging.", dir=model_dir))  # not numeric: Triton skips it
            try:
                staging.chmod(0o755)
                _write_synced(staging / artifact.ONNX, graph)
                _write_synced(staging / artifact.MANIFEST, manifest_bytes)
                if labels is not None:
                    artifact.write_bytes_atomic(model_dir / LABELS, labels.encode())
                artifact.write_bytes_atomic(model_dir / artifact.MANIFEST, manifest_bytes)
                artifact.write_bytes_atomic(model_dir / CONFIG, config_text(config).encode())
                os.rename(staging, model_dir / str(version))  # the version appears whole, or not at all
                fsync_directory(model_dir)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        if fresh:  # a model directory this call created holds no version: leave no trace
            shutil.rmtree(model_dir, ignore_errors=True)
        raise
    return TritonOutcome(name, version, model_dir)
