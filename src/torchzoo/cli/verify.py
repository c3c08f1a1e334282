"""``torchzoo verify MODEL|all``: re-hash every artifact file and re-run every equivalence check."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from torchzoo.cli.artifacts import trained_specs
from torchzoo.cli.checks import error_row, print_checks, report_row
from torchzoo.cli.options import ArtifactsDir, JsonFlag, ModelOrAll, require_train_extra
from torchzoo.cli.output import Output
from torchzoo.core.errors import TorchzooError, UserInputError


def verify(
    model: ModelOrAll = "all",
    artifacts_dir: ArtifactsDir = None,
    as_json: JsonFlag = False,
    key: Annotated[list[Path] | None, typer.Option("--key", help="Also check model.sig with this public key.")] = None,
) -> None:
    """Re-hash every artifact file and re-run every equivalence check from the files on disk alone."""
    require_train_extra("verify")
    from torchzoo.export.zoo import verify_model

    root, specs = trained_specs(model, artifacts_dir, need="manifest.json")
    if key:  # a signature that does not verify is refused (exit 2) before any other file is used
        from torchzoo.core.signing import verify_signature

        for spec in specs:
            verify_signature(root / spec.name, key)
    checks: list[dict[str, Any]] = []
    for spec in specs:
        try:
            checks += [report_row(spec.name, r) for r in verify_model(spec, root)]
        except TorchzooError as exc:
            if len(specs) == 1 and isinstance(exc, UserInputError):  # one refused artifact: exit 2, one line
                raise
            checks.append(error_row(spec.name, "-", str(exc)))
    print_checks(Output(as_json), checks, "verify: files re-hashed, every check re-run")
