"""Finding what a command works on: one artifact directory (a model name under the artifact root, or a path),
or the registered models that have reached a stage (trained, exported)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torchzoo.core.errors import ArtifactError, UserInputError
from torchzoo.core.text_codec import did_you_mean, printable


def artifact_directory(model: str, artifacts_dir: Path | None) -> Path:
    """``model`` as a directory when it is one, else ``<artifact root>/<model>``; a missing one is an
    ArtifactError naming the commands that make it and the closest name found."""
    from torchzoo.core.paths import artifacts_root

    root = artifacts_root(artifacts_dir)
    directory = Path(model) if Path(model).is_dir() else root / model
    if not directory.is_dir():
        shown = printable(model, 64)
        raise ArtifactError(
            f"no artifacts for '{shown}' in {printable(str(directory.parent))}; "
            f"run 'torchzoo train {shown}' then 'torchzoo export {shown}'" + did_you_mean(model, _known_names(root))
        )
    return directory


def _known_names(root: Path) -> list[str]:
    """The exported artifacts under ``root``, and the registered models where the registry can be read (it
    needs the train extra)."""
    present = [p.name for p in root.glob("*") if (p / "manifest.json").is_file()] if root.is_dir() else []
    try:
        from torchzoo.train import registry
    except ImportError:
        return present
    return sorted({*present, *registry.names()})


def trained_specs(model: str, artifacts_dir: Path | None, need: str = "train.json") -> tuple[Path, list[Any]]:
    """The artifact root and the models to work on: the one named, or every model that has ``need``."""
    from torchzoo.core.paths import artifacts_root
    from torchzoo.train import registry

    root = artifacts_root(artifacts_dir)
    specs = registry.resolve(model)
    if model == "all":
        specs = [s for s in specs if (root / s.name / need).exists()]
        if not specs:
            command = "train all" if need == "train.json" else "export all --format all"
            raise UserInputError(f"no models with {need} under {root}; run 'torchzoo {command}' first")
    return root, specs


def exported_names(model: str, artifacts_dir: Path | None) -> tuple[Path, list[str]]:
    """The artifact root and the exported artifacts to work on: the one named (a zoo model or a user's own under
    the root), or, for ``all``, every artifact under the root with a manifest (the zoo's and the user's)."""
    from torchzoo.core.paths import artifacts_root

    root = artifacts_root(artifacts_dir)
    present = sorted(p.name for p in root.glob("*") if (p / "manifest.json").is_file()) if root.is_dir() else []
    if model == "all":
        if not present:
            raise UserInputError(f"no exported models under {root}; run 'torchzoo export all --format all' first")
        return root, present
    if model not in present:
        artifact_directory(model, artifacts_dir)  # a missing one: the one-line error with the closest name
        raise ArtifactError(
            f"{printable(str(root / model))} has no manifest.json; run 'torchzoo export {printable(model, 64)}'"
        )
    return root, [model]
