"""``verify`` for any artifact: a zoo model's is re-checked against the eager model rebuilt from ``model.pt``
(:func:`torchzoo.export.zoo.verify_model`), a user's own against the eager outputs saved at export
(:func:`verify_user`); which one the manifest's ``origin`` says."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from torchzoo.core import artifact
from torchzoo.core.errors import ArtifactError
from torchzoo.core.tensor_spec import TensorSpec
from torchzoo.export.context import ExportContext, quiet
from torchzoo.export.equivalence import FormatReport
from torchzoo.export.exporter import read_checked, verify_artifact


def is_zoo_artifact(directory: Path) -> bool:
    """Whether the artifact at ``directory`` is a zoo model's (its manifest's origin, else its name)."""
    from torchzoo.train import registry

    manifest = artifact.read_manifest(directory)
    origin = manifest.get("origin")
    kind = origin.get("kind") if isinstance(origin, dict) else None
    return (kind in (None, "zoo")) and manifest["model"] in registry.names()


def verify_directory(root: Path, name: str) -> list[FormatReport]:
    """Re-hash every file of ``root/name`` and re-run every format's check from the files alone."""
    directory = root / name
    if is_zoo_artifact(directory):
        from torchzoo.export.zoo import verify_model
        from torchzoo.train import registry

        return verify_model(registry.get(name), root)
    return verify_user(directory)


def verify_user(directory: Path) -> list[FormatReport]:
    """Re-hash every file of a user's model's artifact and re-run every format's check on the saved cases against
    the eager outputs saved at export. The state_dict is loaded into ``model.pt2``'s module (its weights' names
    and shapes are the module's)."""
    manifest, equivalence, cases, saved = read_checked(directory)
    if len(saved) != len(cases):
        raise ArtifactError(f"{directory / artifact.CHECK_INPUTS}: the eager outputs of some cases are missing")
    inputs = tuple(TensorSpec.from_json(t) for t in manifest["inputs"])
    outputs = tuple(TensorSpec.from_json(t) for t in manifest["outputs"])
    program_path = directory / artifact.PT2

    def rebuild() -> nn.Module:
        if not program_path.is_file():
            raise ArtifactError(f"{directory}: model.pt is checked through model.pt2's module, and there is none")
        with quiet():
            return torch.export.load(str(program_path)).module()

    tolerance = (equivalence.get("formats") or {}).get("onnx", {}).get("tolerance_abs", 1e-5)
    ctx = ExportContext(
        name=manifest["model"],
        task=manifest["task"],
        model=nn.Identity(),
        record=manifest,
        example=tuple(torch.from_numpy(a) for a in cases[0].inputs),
        inputs=inputs,
        outputs=outputs,
        rebuild=rebuild,
        tolerance=float(tolerance),
    )
    return verify_artifact(ctx, directory, manifest, cases, saved)
