"""``torchzoo export MODEL|all --format F``: every format proven equivalent to the eager model; your own model from
``PATH.pt2`` or ``MODULE:FACTORY`` (:mod:`torchzoo.cli.export_own`); ``--format triton`` adds verified artifacts to
a Triton model repository."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from torchzoo.cli.artifacts import exported_names, trained_specs
from torchzoo.cli.checks import error_row, print_checks, report_row
from torchzoo.cli.export_own import OwnModel, export_own, is_own_source
from torchzoo.cli.options import ArtifactsDir, DataDir, ExportSource, FormatOpt, JsonFlag, require_train_extra
from torchzoo.cli.output import Output, status_cell
from torchzoo.core.errors import TorchzooError, UserInputError


def export(
    model: ExportSource = "all",
    format: FormatOpt = None,
    data_dir: DataDir = None,
    artifacts_dir: ArtifactsDir = None,
    as_json: JsonFlag = False,
    repository: Annotated[
        Path | None, typer.Option(help="With --format triton: the Triton model repository to add the models to.")
    ] = None,
    gpu: Annotated[
        bool, typer.Option("--gpu", help="With --format triton: KIND_GPU instances (default KIND_CPU).")
    ] = False,
    task: Annotated[
        str | None,
        typer.Option(help="Your own model: classification, binary, multilabel, regression or tensor (raw outputs)."),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Your own model: the artifact's name (default: the file's or the factory's).")
    ] = None,
    labels: Annotated[Path | None, typer.Option(help="Your own model: a text file, one label per line.")] = None,
    heldout: Annotated[
        Path | None, typer.Option(help="Your own model: .npz of held-out inputs (by input name) and 'targets'.")
    ] = None,
    weights: Annotated[
        Path | None, typer.Option(help="MODULE:FACTORY: the state_dict (read with weights_only=True).")
    ] = None,
    input: Annotated[
        list[str] | None,
        typer.Option(
            "--input", help="MODULE:FACTORY: NAME:DTYPE[DIMS] per forward argument, e.g. x:float32[batch,3,32,32]."
        ),
    ] = None,
    dim: Annotated[
        list[str] | None, typer.Option("--dim", help="MODULE:FACTORY: a dynamic dim's range, NAME=MIN:MAX.")
    ] = None,
    values: Annotated[
        list[str] | None,
        typer.Option(
            "--values",
            help="Your own model: an input's valid values, NAME=LOW:HIGH (integer inputs of MODULE:FACTORY need it).",
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            help="Your own model: what output 0 holds: logits, log_probs or probs (classification); logits "
            "or probs (binary, multilabel).",
        ),
    ] = None,
    output_name: Annotated[
        list[str] | None, typer.Option("--output-name", help="Your own model: the outputs' names, in order.")
    ] = None,
) -> None:
    """Export trained models and prove each format equivalent to the eager model (fails if not); your own model
    from PATH.pt2 or MODULE:FACTORY; --format triton adds verified artifacts to a Triton model repository."""
    require_train_extra("export")
    if format == "triton" or repository is not None or gpu:
        _export_triton(model, format, repository, gpu, artifacts_dir, Output(as_json))
        return
    own = OwnModel(task, name, labels, heldout, weights, input or [], dim or [], values or [], output, output_name)
    if is_own_source(model):
        export_own(model, format or "all", artifacts_dir, Output(as_json), own)
        return
    own.refuse_for_zoo()
    from torchzoo.export.exporter import resolve_formats
    from torchzoo.export.zoo import export_model
    from torchzoo.train import registry

    if model != "all" and model not in registry.names():
        from torchzoo.core.paths import artifacts_root

        if (artifacts_root(artifacts_dir) / model / "manifest.json").is_file():
            raise UserInputError(
                f"'{model}' is your own model's artifact: export it again from its source (torchzoo.package, "
                "PATH.pt2 or MODULE:FACTORY), or add it to Triton with --format triton --repository DIR"
            )
        registry.get(model)  # a one-line error with the closest name
    formats = resolve_formats(format or "onnx")
    root, specs = trained_specs(model, artifacts_dir)
    checks: list[dict[str, Any]] = []
    for spec in specs:
        try:
            outcome = export_model(spec, formats, root, data_dir)
        except TorchzooError as exc:
            if len(specs) == 1:
                raise
            checks.append(error_row(spec.name, format or "onnx", str(exc)))
            continue
        for report in outcome.reports:
            checks.append(report_row(spec.name, report, outcome.failure_report))
    print_checks(Output(as_json), checks, "export + equivalence check")


def _export_triton(
    model: str, format: str | None, repository: Path | None, gpu: bool, artifacts_dir: Path | None, out: Output
) -> None:
    """``export --format triton``: each verified artifact becomes the next version in the repository."""
    if format != "triton":
        raise UserInputError("--repository and --gpu go with --format triton only")
    if repository is None:
        raise UserInputError("--format triton needs --repository DIR (the Triton model repository to write to)")
    from torchzoo.export.triton import export_triton

    root, names = exported_names(model, artifacts_dir)
    rows: list[dict[str, Any]] = []
    for name in names:
        try:
            done = export_triton(name, root, repository, gpu)
            rows.append({"model": name, "version": done.version, "directory": str(done.directory), "error": None})
        except TorchzooError as exc:
            if len(names) == 1:
                raise
            rows.append({"model": name, "version": None, "directory": None, "error": str(exc)})
    cells = [
        (r["model"], str(r["version"] or "-"), r["directory"] or "-", status_cell(not r["error"], r["error"] or ""))
        for r in rows
    ]
    title = f"Triton model repository {repository} (verified before writing)"
    out.result(rows, lambda: out.table(title, ("model", "version", "directory", "status"), cells))
    if any(r["error"] for r in rows):
        raise typer.Exit(1)
