"""``verify`` for any artifact: a zoo model's is re-checked against the eager model rebuilt from ``model.pt``
(:func:`torchzoo.export.zoo.verify_model`), a user's own against the eager outputs saved at export
(:func:`torchzoo.export.package.verify_user`); which one the manifest's ``origin`` says."""

from __future__ import annotations

from pathlib import Path

from torchzoo.core import artifact
from torchzoo.export.equivalence import FormatReport


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
    from torchzoo.export.package import verify_user

    return verify_user(directory)
