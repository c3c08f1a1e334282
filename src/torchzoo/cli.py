"""The ``torchzoo`` command line (typer). Every command imports its room lazily, so ``predict`` never
imports torch or training code and starts fast. Errors: one line on stderr (JSON with ``--json``),
exit 2 for bad input, 1 for failures."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from torchzoo.errors import TorchzooError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Train the PyTorch tutorial models, export them with proven equivalence, serve them with onnxruntime.",
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class ProfileName(StrEnum):
    full = "full"
    quick = "quick"


ModelArg = Annotated[str, typer.Argument(help="A model name from 'torchzoo list', or 'all'.")]
DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Dataset root (default: $TORCHZOO_DATA, ./data, ../shared/data).")
]
ArtifactsDir = Annotated[
    Path | None, typer.Option("--artifacts-dir", help="Artifact root (default: $TORCHZOO_ARTIFACTS or ./artifacts).")
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")


def _fmt_metric(metrics: dict[str, Any] | None) -> str:
    for key, value in (metrics or {}).items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            return f"{key}={value:.4g}"
    return "-"


@app.command()
def train(
    model: ModelArg,
    profile: Annotated[ProfileName, typer.Option(help="full: the tutorial's recipe; quick: minutes, for CI.")] = (
        ProfileName.full
    ),
    seed: Annotated[int, typer.Option(help="Random seed (recorded in the manifest).")] = 0,
    data_dir: DataDir = None,
    artifacts_dir: ArtifactsDir = None,
) -> None:
    """Train one model (or all) and write artifacts/<model>/ (state_dict, metrics, curves)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from torchzoo.paths import artifacts_root
    from torchzoo.train import registry
    from torchzoo.train.family import TrainContext
    from torchzoo.train.runner import TrainOutcome, train_model

    specs = registry.resolve(model)
    root = artifacts_root(artifacts_dir)
    outcomes: list[TrainOutcome] = []
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=False) as progress:
        for spec in specs:
            task = progress.add_task(spec.name, total=None, info="loading data")

            def on_epoch(epoch: int, total: int, row: dict[str, float], task: Any = task) -> None:
                shown = {k: v for k, v in row.items() if k.startswith("val_") or k == "train_loss"}
                info = " ".join(f"{k}={v:.4g}" for k, v in shown.items())
                progress.update(task, completed=epoch, total=total, info=info)

            ctx = TrainContext(profile=profile.value, seed=seed, on_epoch=on_epoch)
            try:
                outcome = train_model(spec, ctx, root, data_dir)
                progress.update(task, info=f"done: {_fmt_metric(outcome.metrics)}")
            except TorchzooError as exc:
                if len(specs) == 1:
                    raise
                outcome = TrainOutcome(spec, 0.0, error=str(exc))
                progress.update(task, info=f"[red]failed: {exc}")
            outcomes.append(outcome)
    table = Table(title=f"trained ({profile.value} profile) -> {root}")
    for column in ("model", "metric", "seconds", "status"):
        table.add_column(column)
    for o in outcomes:
        table.add_row(o.spec.name, _fmt_metric(o.metrics), f"{o.seconds:.1f}", "ok" if o.error is None else o.error)
    out.print(table)
    if any(o.error for o in outcomes):
        raise typer.Exit(1)


@app.command()
def export(
    model: Annotated[str, typer.Argument(help="A model name, or 'all'.")] = "all",
    format: Annotated[str, typer.Option("--format", "-f", help="state_dict | torchscript | onnx | all")] = "onnx",
    data_dir: DataDir = None,
    artifacts_dir: ArtifactsDir = None,
) -> None:
    """Export trained models and prove each format equivalent to the eager model (fails if not)."""
    from torchzoo.export.exporter import export_model, resolve_formats
    from torchzoo.paths import artifacts_root
    from torchzoo.train import registry

    formats = resolve_formats(format)
    root = artifacts_root(artifacts_dir)
    specs = registry.resolve(model)
    if model == "all":
        specs = [s for s in specs if (root / s.name / "train.json").exists()]
        if not specs:
            raise TorchzooError(f"no trained models under {root}; run 'torchzoo train all' first")
    table = Table(title="export + equivalence check")
    for column in ("model", "format", "max abs diff", "tolerance", "check"):
        table.add_column(column)
    failed = False
    for spec in specs:
        try:
            outcome = export_model(spec, formats, root, data_dir)
            for report in outcome.reports:
                table.add_row(spec.name, report.format, f"{report.max_abs:.2e}", f"{report.tolerance:g}", "pass")
        except TorchzooError as exc:
            if len(specs) == 1:
                raise
            failed = True
            table.add_row(spec.name, format, "-", "-", f"[red]FAIL: {exc}")
    out.print(table)
    if failed:
        raise typer.Exit(1)


@app.command()
def predict(
    model: Annotated[str, typer.Argument(help="Model name (artifacts/<model>) or a path to an artifact directory.")],
    inputs: Annotated[list[str], typer.Argument(help="Inputs: names for 'names'.")],
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="How many labels to show.")] = 3,
    threshold: Annotated[float, typer.Option(help="Multi-label decision threshold.")] = 0.5,
    provider: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    as_json: JsonFlag = False,
    artifacts_dir: ArtifactsDir = None,
) -> None:
    """Predict with the exported ONNX graph through onnxruntime (torch is never imported)."""
    from torchzoo.paths import artifacts_root
    from torchzoo.serve_cli import load

    directory = Path(model) if Path(model).is_dir() else artifacts_root(artifacts_dir) / model
    if not directory.is_dir():
        from torchzoo.train import registry

        registry.get(model)  # unknown names get a suggestion
    predictor = load(directory, provider)
    err.print(f"provider: {predictor.provider}" + (f" ({predictor.notice})" if predictor.notice else ""))
    results = predictor.predict(inputs, top_k=top_k, threshold=threshold)
    if as_json:
        emit_json([{"input": i, **r} for i, r in zip(inputs, results, strict=True)])
        return
    table = Table(title=f"{predictor.name}: top-{top_k}" if predictor.task == "classification" else predictor.name)
    table.add_column("input")
    if predictor.task == "classification":
        for rank in range(1, min(top_k, len(predictor.labels)) + 1):
            table.add_column(f"#{rank}")
        for i, r in zip(inputs, results, strict=True):
            table.add_row(i, *(f"{t['label']} {t['probability']:.3f}" for t in r["top"]))
    else:
        table.add_column("result")
        for i, r in zip(inputs, results, strict=True):
            table.add_row(i, json.dumps(r))
    out.print(table)


@app.command("list")
def list_models(artifacts_dir: ArtifactsDir = None, as_json: JsonFlag = False) -> None:
    """Every registered model, its data, size, metric and which artifacts exist."""
    from torchzoo import artifact
    from torchzoo.paths import artifacts_root
    from torchzoo.train import registry

    root = artifacts_root(artifacts_dir)
    rows = []
    for spec in registry.MODELS:
        directory = root / spec.name
        record = (
            artifact.read_json(directory / artifact.TRAIN_RECORD)
            if (directory / artifact.TRAIN_RECORD).exists()
            else None
        )
        manifest = (
            artifact.read_json(directory / artifact.MANIFEST) if (directory / artifact.MANIFEST).exists() else None
        )
        status = "not trained" if record is None else "trained"
        if manifest:
            status = "exported: " + ", ".join(manifest.get("formats", {}))
        rows.append(
            {
                "name": spec.name,
                "task": spec.task,
                "dataset": spec.dataset,
                "parameters": record["parameters"] if record else None,
                "metric": _fmt_metric(record["metrics"]) if record else "-",
                "profile": record["profile"] if record else None,
                "status": status,
            }
        )
    if as_json:
        emit_json(rows)
        return
    table = Table(title=f"torchzoo models ({root})")
    for column in ("name", "task", "dataset", "parameters", "metric", "status"):
        table.add_column(column)
    for r in rows:
        params = f"{r['parameters']:,}" if r["parameters"] is not None else "-"
        table.add_row(r["name"], r["task"], r["dataset"], params, r["metric"], r["status"])
    out.print(table)


def _read_optional(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def main() -> None:
    """Entry point: typer handles usage errors (exit 2); our errors become one line and an exit code."""
    json_mode = "--json" in sys.argv[1:]
    try:
        app()
    except TorchzooError as exc:
        _report_error(str(exc), exc.exit_code, json_mode)
        sys.exit(exc.exit_code)
    except Exception as exc:  # internal error: still one line, never a traceback
        detail = str(exc).splitlines()[0] if str(exc) else ""
        _report_error(f"internal error: {type(exc).__name__}: {detail}", 1, json_mode)
        sys.exit(1)


def _report_error(message: str, code: int, json_mode: bool) -> None:
    message = " ".join(message.split())
    if json_mode:
        sys.stdout.write(json.dumps({"error": message, "exit_code": code}) + "\n")
    else:
        sys.stderr.write(f"torchzoo: error: {message}\n")


if __name__ == "__main__":
    main()
