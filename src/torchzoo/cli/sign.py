"""``torchzoo sign NAME --key PRIVATE_KEY``: sign an artifact directory (OpenSSF model-signing, ECDSA key).

The artifact is checked first (manifest, schema, every file's sha256, nothing in the directory that the
manifest does not list), so what gets signed is an intact artifact. Needs ``pip install 'torchzoo[sign]'``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from torchzoo.cli.artifacts import artifact_directory
from torchzoo.cli.options import ArtifactsDir, JsonFlag, ModelOrPath
from torchzoo.cli.output import Output


def sign(
    model: ModelOrPath,
    key: Annotated[Path, typer.Option("--key", help="ECDSA private key (PEM), e.g. from openssl ecparam.")],
    artifacts_dir: ArtifactsDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Sign an artifact directory: writes model.sig, which 'model_signing verify key' also accepts."""
    from torchzoo.core import artifact
    from torchzoo.core.errors import ArtifactError
    from torchzoo.core.signing import SIGNATURE, sign_artifact
    from torchzoo.core.text_codec import printable

    directory = artifact_directory(model, artifacts_dir)
    manifest = artifact.read_manifest(directory)
    artifact.verify_files(directory, manifest)
    extra = sorted({p.name for p in directory.iterdir()} - set(manifest["files"]) - {artifact.MANIFEST, SIGNATURE})
    if extra:
        raise ArtifactError(
            f"{printable(str(directory))} holds files its manifest does not list ({printable(', '.join(extra))}); "
            "re-export it before signing"
        )
    written = sign_artifact(directory, key)
    output = Output(as_json)
    output.result(
        {"model": manifest["model"], "signature": str(written)},
        lambda: output.text(f"signed {printable(str(directory))}: {printable(str(written))}"),
    )
