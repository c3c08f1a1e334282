"""The manifest: one self-describing JSON per artifact directory (what an app needs to run the model).

Schema (version 1): model, task, summary, dataset, labels, inputs, outputs, preprocessing, metrics,
seed, profile, recipe, parameters, formats (how each file was made), equivalence (pass per format), variants
(the int8/fp16 graphs published and refused, with their accuracy check: torchzoo.export.variants),
versions, the sha256 and size of every file in the directory, and the manifest's own sha256
(``manifest_sha256``, over its canonical JSON without that field). Written last.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

from torchzoo import __version__
from torchzoo.core import artifact
from torchzoo.core.clock import utc_now
from torchzoo.export.formats import FORMATS, export_versions

_NOT_HASHED = {artifact.MANIFEST, artifact.SIGNATURE}  # the signature covers the manifest, not the reverse


def file_table(directory: Path) -> dict[str, dict[str, Any]]:
    return {
        path.name: {"sha256": artifact.sha256_file(path), "bytes": path.stat().st_size}
        for path in sorted(directory.iterdir())
        if path.is_file() and path.name not in _NOT_HASHED and not path.name.startswith(".")
    }


def build_manifest(
    directory: Path, record: dict[str, Any], formats: dict[str, Any], variants: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``formats``: per exported format, what its writer recorded plus its check verdict. ``variants``: the
    runtime's graph variants (:func:`torchzoo.export.variants.manifest_block`), under the key ``variants``."""
    present = {name: info for name, info in formats.items() if (directory / FORMATS[name].filename).exists()}
    return artifact.seal_manifest(
        {
            "schema_version": artifact.SCHEMA_VERSION,
            "model": record["model"],
            "task": record["task"],
            "summary": record["summary"],
            "dataset": record["dataset"],
            "labels": record["labels"],
            "inputs": record["inputs"],
            "outputs": record["outputs"],
            "preprocessing": record["preprocessing"],
            "postprocessing": record["postprocessing"],
            "metrics": record["metrics"],
            "seed": record["seed"],
            "profile": record["profile"],
            "recipe": record["recipe"],
            "parameters": record["parameters"],
            #: where the model came from: the zoo, or a user's module, program or factory (torchzoo.package)
            "origin": record.get("origin", {"kind": "zoo"}),
            "mode": "eval: exported and checked after model.eval() (BatchNorm: running statistics; Dropout: off)",
            "formats": {name: {"file": FORMATS[name].filename, **info} for name, info in present.items()},
            "equivalence_file": artifact.EQUIVALENCE,
            **({"variants": variants} if variants else {}),
            **({"refused_formats": record["refused_formats"]} if record.get("refused_formats") else {}),
            "versions": {**export_versions(), "python": platform.python_version(), "torchzoo": __version__},
            "created": utc_now(),
            "files": file_table(directory),
        }
    )
