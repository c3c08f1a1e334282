"""``torchzoo verify MODEL|all``: re-hash every artifact file and re-run every equivalence check."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from torchzoo.cli.artifacts import exported_names
from torchzoo.cli.checks import error_row, print_checks, report_row
from torchzoo.cli.options import ArtifactOrAll, ArtifactsDir, JsonFlag, require_train_extra
from torchzoo.cli.output import Output
from torchzoo.core.errors import TorchzooError, UserInputError


def verify(
    model: ArtifactOrAll = "all",
    artifacts_dir: ArtifactsDir = None,
    as_json: JsonFlag = False,
    key: Annotated[list[Path] | None, typer.Option("--key", help="Also check model.sig with this public key.")] = None,
) -> None:
    """Re-hash every artifact file and re-run every equivalence check from the files on disk alone."""
    require_train_extra("verify")
    from torchzoo.export.verify import verify_directory

    root, names = exported_names(model, artifacts_dir)
    if key:  # a signature that does not verify is refused (exit 2) before any other file is used
        from torchzoo.core.signing import verify_signature

        for name in names:
            verify_signature(root / name, key)
    checks: list[dict[str, Any]] = []
    for name in names:
        try:
            checks += [report_row(name, r) for r in verify_directory(root, name)]
        except TorchzooError as exc:
            if len(names) == 1 and isinstance(exc, UserInputError):  # one refused artifact: exit 2, one line
                raise
            checks.append(error_row(name, "-", str(exc)))
    print_checks(Output(as_json), checks, "verify: files re-hashed, every check re-run")
