"""``torchzoo embed NAME --out DIR``: a bundle for a JavaScript app (graph, manifest, JS client, README, page)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from torchzoo.options import ArtifactsDir, JsonFlag


def register(app: typer.Typer) -> None:
    @app.command()
    def embed(
        model: Annotated[
            str, typer.Argument(help="Model name (artifacts/<model>) or a path to an artifact directory.")
        ],
        out: Annotated[Path, typer.Option("--out", help="The bundle's directory (created).")],
        artifacts_dir: ArtifactsDir = None,
        as_json: JsonFlag = False,
    ) -> None:
        """Write a ready bundle for a Node or web app: model.onnx, manifest.json, the JS client, README, page."""
        from torchzoo.core.errors import ArtifactError
        from torchzoo.core.paths import artifacts_root
        from torchzoo.embed import write_bundle
        from torchzoo.output import Output

        directory = Path(model) if Path(model).is_dir() else artifacts_root(artifacts_dir) / model
        if not directory.is_dir():
            raise ArtifactError(
                f"no artifacts for '{model}' in {directory.parent}; "
                f"run 'torchzoo train {model}' then 'torchzoo export {model}'"
            )
        written = write_bundle(directory, out)
        output = Output(as_json)
        output.result(
            {"model": model, "out": str(out), "files": [p.name for p in written]},
            lambda: output.text("\n".join(str(p) for p in written)),
        )
        output.note(f"bundle for {model} in {out}: npm install --ignore-scripts there, then see its README.md")
