"""``torchzoo embed NAME --out DIR``: a bundle for a JavaScript app (graph, manifest, JS client, README, page)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from torchzoo.cli.artifacts import artifact_directory
from torchzoo.cli.options import ArtifactsDir, JsonFlag, ModelOrPath
from torchzoo.cli.output import Output


def embed(
    model: ModelOrPath,
    out: Annotated[Path, typer.Option("--out", help="The bundle's directory (created).")],
    artifacts_dir: ArtifactsDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Write a ready bundle for a Node or web app: model.onnx, manifest.json, the JS client, README, page."""
    from torchzoo.embed import write_bundle

    directory = artifact_directory(model, artifacts_dir)
    written = write_bundle(directory, out)
    output = Output(as_json)
    output.result(
        {"model": model, "out": str(out), "files": [p.name for p in written]},
        lambda: output.text("\n".join(str(p) for p in written)),
    )
    output.note(f"bundle for {model} in {out}: npm install --ignore-scripts there, then see its README.md")
