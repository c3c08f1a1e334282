"""``torchzoo export MODEL|all --format F``: every format proven equivalent to the eager model; ``--format triton``
adds verified artifacts to a Triton model repository."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from torchzoo.cli.artifacts import trained_specs
from torchzoo.cli.checks import error_row, print_checks, report_row
from torchzoo.cli.options import ArtifactsDir, DataDir, FormatOpt, JsonFlag, ModelOrAll, require_train_extra
from torchzoo.cli.output import Output, status_cell
from torchzoo.core.errors import TorchzooError, UserInputError


def export(
    model: ModelOrAll = "all",
    format: FormatOpt = "onnx",
    data_dir: DataDir = None,
    artifacts_dir: ArtifactsDir = None,
    as_json: JsonFlag = False,
    repository: Annotated[
        Path | None, typer.Option(help="With --format triton: the Triton model repository to add the models to.")
    ] = None,
    gpu: Annotated[
        bool, typer.Option("--gpu", help="With --format triton: KIND_GPU instances (default KIND_CPU).")
    ] = False,
) -> None:
    """Export trained models and prove each format equivalent to the eager model (fails if not); --format triton
    adds verified artifacts to a Triton model repository instead."""
    require_train_extra("export")
    if format == "triton" or repository is not None or gpu:
        _export_triton(model, format, repository, gpu, artifacts_dir, Output(as_json))
        return
    from torchzoo.export.exporter import resolve_formats
    from torchzoo.export.zoo import export_model

    formats = resolve_formats(format)
    root, specs = trained_specs(model, artifacts_dir)
    checks: list[dict[str, Any]] = []
    for spec in specs:
        try:
            outcome = export_model(spec, formats, root, data_dir)
        except TorchzooError as exc:
            if len(specs) == 1:
                raise
            checks.append(error_row(spec.name, format, str(exc)))
            continue
        for report in outcome.reports:
            checks.append(report_row(spec.name, report, outcome.failure_report))
    print_checks(Output(as_json), checks, "export + equivalence check")


def _export_triton(
    model: str, format: str, repository: Path | None, gpu: bool, artifacts_dir: Path | None, out: Output
) -> None:
    """``export --format triton``: each verified artifact becomes the next version in the repository."""
    if format != "triton":
        raise UserInputError("--repository and --gpu go with --format triton only")
    if repository is None:
        raise UserInputError("--format triton needs --repository DIR (the Triton model repository to write to)")
    from torchzoo.export.triton import export_triton

    root, specs = trained_specs(model, artifacts_dir, need="manifest.json")
    rows: list[dict[str, Any]] = []
    for spec in specs:
        try:
            done = export_triton(spec, root, repository, gpu)
            rows.append({"model": spec.name, "version": done.version, "directory": str(done.directory), "error": None})
        except TorchzooError as exc:
            if len(specs) == 1:
                raise
            rows.append({"model": spec.name, "version": None, "directory": None, "error": str(exc)})
    cells = [
        (r["model"], str(r["version"] or "-"), r["directory"] or "-", status_cell(not r["error"], r["error"] or ""))
        for r in rows
    ]
    title = f"Triton model repository {repository} (verified before writing)"
    out.result(rows, lambda: out.table(title, ("model", "version", "directory", "status"), cells))
    if any(r["error"] for r in rows):
        raise typer.Exit(1)
