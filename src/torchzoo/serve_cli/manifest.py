"""Read and validate an artifact's manifest, and check file hashes before anything runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torchzoo import artifact
from torchzoo.errors import ArtifactError

REQUIRED = ("schema_version", "model", "task", "labels", "inputs", "outputs", "preprocessing", "files")


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / artifact.MANIFEST
    if not directory.is_dir():
        raise ArtifactError(f"no artifact directory {directory}; create it with 'torchzoo train' + 'torchzoo export'")
    if not path.exists():
        raise ArtifactError(f"{directory} has no {artifact.MANIFEST}; run 'torchzoo export {directory.name}'")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} is not valid JSON ({exc.__class__.__name__})") from exc
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{path} is not a manifest object")
    missing = [k for k in REQUIRED if k not in manifest]
    if missing:
        raise ArtifactError(f"{path} lacks {', '.join(missing)}")
    if manifest["schema_version"] != artifact.SCHEMA_VERSION:
        raise ArtifactError(
            f"{path} has schema version {manifest['schema_version']!r}; this runtime reads "
            f"version {artifact.SCHEMA_VERSION}"
        )
    return manifest


def verify_file(directory: Path, manifest: dict[str, Any], filename: str) -> Path:
    """Check that ``filename`` exists and matches the manifest's sha256 and size."""
    path = directory / filename
    entry = manifest["files"].get(filename)
    if entry is None:
        raise ArtifactError(f"{filename} is not listed in {directory / artifact.MANIFEST}; re-run export")
    if not path.exists():
        raise ArtifactError(f"{path} is missing; run 'torchzoo export {manifest['model']}'")
    if path.stat().st_size != entry["bytes"] or artifact.sha256_file(path) != entry["sha256"]:
        raise ArtifactError(f"{path} does not match the sha256 in its manifest (modified or damaged)")
    return path
