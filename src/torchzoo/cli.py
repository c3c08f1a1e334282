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

from torchzoo.core.errors import ArtifactError, TorchzooError, UserInputError

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

    from torchzoo.core.paths import artifacts_root
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
    model: Annotated[str, typer.Argument(help="A model name, or 'all' (every trained model).")] = "all",
    format: Annotated[str, typer.Option("--format", "-f", help="state_dict | torchscript | onnx | all")] = "onnx",
    data_dir: DataDir = None,
    artifacts_dir: ArtifactsDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Export trained models and prove each format equivalent to the eager model (fails if not)."""
    from torchzoo.export.exporter import export_model, resolve_formats

    formats = resolve_formats(format)
    root, specs = _trained_specs(model, artifacts_dir)
    rows: list[dict[str, Any]] = []
    for spec in specs:
        try:
            outcome = export_model(spec, formats, root, data_dir)
            rows += [_report_row(spec.name, r) for r in outcome.reports]
        except TorchzooError as exc:
            if len(specs) == 1:
                raise
            rows.append({"model": spec.name, "format": format, "passed": False, "error": str(exc)})
    _print_reports(rows, "export + equivalence check", as_json)


@app.command()
def verify(
    model: Annotated[str, typer.Argument(help="A model name, or 'all' (every exported model).")] = "all",
    artifacts_dir: ArtifactsDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Re-hash every artifact file and re-run every equivalence check from the files on disk alone."""
    from torchzoo.export.exporter import verify_model

    root, specs = _trained_specs(model, artifacts_dir, need="manifest.json")
    rows: list[dict[str, Any]] = []
    for spec in specs:
        try:
            rows += [_report_row(spec.name, r) for r in verify_model(spec, root)]
        except TorchzooError as exc:
            rows.append({"model": spec.name, "format": "-", "passed": False, "error": str(exc)})
    _print_reports(rows, "verify: files re-hashed, every check re-run", as_json)


def _trained_specs(model: str, artifacts_dir: Path | None, need: str = "train.json") -> tuple[Path, list[Any]]:
    """The artifact root and the models to work on: the one named, or every model that has ``need``."""
    from torchzoo.core.paths import artifacts_root
    from torchzoo.train import registry

    root = artifacts_root(artifacts_dir)
    specs = registry.resolve(model)
    if model == "all":
        specs = [s for s in specs if (root / s.name / need).exists()]
        if not specs:
            command = "train all" if need == "train.json" else "export all --format all"
            raise UserInputError(f"no models with {need} under {root}; run 'torchzoo {command}' first")
    return root, specs


def _report_row(model: str, report: Any) -> dict[str, Any]:
    heldout = [r for r in report.rows if r.kind == "heldout"]
    random = [r for r in report.rows if r.kind == "random"]
    agreements = [r.agreement for r in heldout if r.agreement is not None]
    return {
        "model": model,
        "format": report.format,
        "heldout_max_abs": max((r.max_abs for r in heldout), default=None),
        "random_max_abs": max((r.max_abs for r in random), default=None),
        "tolerance": report.tolerance,
        "case_tolerance": max((t for t, _, _ in report.case_tolerances.values()), default=None),
        "case_rtol": max((r for _, r, _ in report.case_tolerances.values()), default=None),
        "heldout_top1_agreement": min(agreements) if agreements else None,
        "runners": len({r.runner for r in report.rows}),
        "passed": report.passed,
        "error": None if report.passed else report.summary(),
    }


def _print_reports(rows: list[dict[str, Any]], title: str, as_json: bool) -> None:
    """The per model x format check table (or JSON); exit 1 if any row failed."""
    failed = any(not r["passed"] for r in rows)
    if as_json:
        emit_json({"passed": not failed, "checks": rows})
    else:
        table = Table(title=title)
        for column in ("model", "format", "held-out max|diff|", "random max|diff|", "tol", "top-1 agree", "check"):
            table.add_column(column, no_wrap=column in ("model", "format"))

        def num(value: float | None) -> str:
            return "-" if value is None else f"{value:.1e}"

        for r in rows:
            agree = r.get("heldout_top1_agreement")
            table.add_row(
                r["model"],
                r["format"],
                num(r.get("heldout_max_abs")),
                num(r.get("random_max_abs")),
                num(r.get("tolerance")) + ("*" if r.get("case_tolerance") or r.get("case_rtol") else ""),
                "-" if agree is None else f"{agree:.0%}",
                "pass" if r["passed"] else f"[red]FAIL[/red] {r['error']}",
            )
        out.print(table)
        if any(r.get("case_tolerance") or r.get("case_rtol") for r in rows):
            out.print("* some cases have a wider tolerance, justified in equivalence.json (case_tolerances)")
    if failed:
        raise typer.Exit(1)


@app.command()
def predict(
    model: Annotated[str, typer.Argument(help="Model name (artifacts/<model>) or a path to an artifact directory.")],
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="names: strings; image models: PNG/JPEG files or a .npy batch; wine: 13 comma-separated "
            "numbers or a CSV file; moons: 'x1,x2'; linreg/house: a number."
        ),
    ],
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="How many labels to show.")] = 3,
    threshold: Annotated[float, typer.Option(min=0.0, max=1.0, help="Binary/multi-label threshold.")] = 0.5,
    provider: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    as_json: JsonFlag = False,
    artifacts_dir: ArtifactsDir = None,
) -> None:
    """Predict with the exported ONNX graph through onnxruntime (torch is never imported)."""
    from torchzoo.core.paths import artifacts_root
    from torchzoo.serve_cli import load

    directory = Path(model) if Path(model).is_dir() else artifacts_root(artifacts_dir) / model
    if not directory.is_dir():
        from torchzoo.train import registry

        spec = registry.get(model)  # unknown names get a suggestion
        raise ArtifactError(
            f"no artifacts for '{spec.name}' in {directory.parent}; "
            f"run 'torchzoo train {spec.name}' then 'torchzoo export {spec.name}'"
        )
    predictor = load(directory, provider)
    err.print(f"provider: {predictor.provider}" + (f" ({predictor.notice})" if predictor.notice else ""))
    results = predictor.predict(inputs, top_k=top_k, threshold=threshold)
    if as_json:
        emit_json({"model": predictor.name, "provider": predictor.provider, "results": results})
        return
    out.print(_results_table(predictor.name, predictor.task, results, top_k, threshold))


def _results_table(name: str, task: str, results: list[dict[str, Any]], top_k: int, threshold: float) -> Table:
    """One row per sample: top-k labels with probabilities, labels over the threshold, or the value."""
    table = Table(title=f"{name}: top-{top_k}" if task == "classification" else name)
    table.add_column("input", overflow="fold")
    if task == "classification":
        for rank in range(1, len(results[0]["top"]) + 1):
            table.add_column(f"#{rank}")
        for r in results:
            table.add_row(r["input"], *(f"{t['label']} {t['probability']:.3f}" for t in r["top"]))
    elif task == "multilabel":
        table.add_column(f"labels (p >= {threshold:g})")
        table.add_column("top scores")
        for r in results:
            best = sorted(r["all"].items(), key=lambda kv: -kv[1])[:top_k]
            table.add_row(r["input"], ", ".join(r["labels"]) or "-", ", ".join(f"{k} {v:.3f}" for k, v in best))
    elif task == "binary":
        table.add_column("label")
        table.add_column("p(positive)")
        for r in results:
            table.add_row(r["input"], r["label"], f"{r['probability']:.4f}")
    else:
        table.add_column("value")
        for r in results:
            table.add_row(r["input"], json.dumps(r["value"]))
    return table


#: models whose onnxruntime session settings are compared: the smallest miss, an MLP, a recurrent net, the CNN
SESSION_TUNED = ("linreg", "wine", "mnist-mlp", "mnist-lstm", "cifar10-cnn", "names")


@app.command()
def bench(
    model: Annotated[str, typer.Argument(help="A model name, or 'all' (every exported model).")] = "all",
    quick: Annotated[bool, typer.Option(help="A few rounds only (checks that bench runs; numbers are rough).")] = False,
    training: Annotated[bool, typer.Option(help="Also time the names training against the tutorial's loop.")] = False,
    tutorial_steps: Annotated[int, typer.Option(help="Tutorial-loop steps timed (scaled to 100,000).")] = 5000,
    cold_start_repeats: Annotated[int, typer.Option(help="Cold-start runs per command (0: skip).")] = 5,
    out_dir: Annotated[Path, typer.Option("--out", help="Where results.json and results.md go.")] = Path("benchmarks"),
    update: Annotated[
        bool, typer.Option(help="Replace only the rows measured now in an existing results.json; keep the rest.")
    ] = False,
    artifacts_dir: ArtifactsDir = None,
    data_dir: DataDir = None,
) -> None:
    """Latency, throughput, FLOPs, sizes and memory per runtime, in one run; writes benchmarks/results.*"""
    from rich.progress import Progress

    from torchzoo import bench as b

    root, specs = _trained_specs(model, artifacts_dir, need="manifest.json")
    earlier = b.read_results(out_dir) if update else None  # refuse before measuring anything
    config = b.BenchConfig(quick=quick)
    results: dict[str, Any] = {"environment": b.environment(), "quick": quick, "models": []}
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("bench", total=len(specs))
        for spec in specs:
            progress.update(task, description=f"bench {spec.name}")
            results["models"].append(b.bench_model(spec, root, config))
            progress.advance(task)
        tuned = [s for s in specs if s.name in SESSION_TUNED]
        results["session_tuning"] = {s.name: b.session_tuning(s, root, config) for s in tuned}
        if cold_start_repeats and (root / "names" / "manifest.json").exists():
            progress.update(task, description="cold start")
            results["cold_start"] = b.cold_start(root, cold_start_repeats)
        if training:
            progress.update(task, description="names training vs the tutorial loop")
            results["training"] = b.names_training(data_dir, tutorial_steps)
    if earlier is not None:
        results = b.merge_results(earlier, results)
    json_path, md_path = b.write_results(results, out_dir)
    out.print(md_path.read_text())
    err.print(f"wrote {json_path} and {md_path}")


@app.command()
def report(artifacts_dir: ArtifactsDir = None) -> None:
    """Write <artifacts>/report.md: the lab's accuracy, loss, fit and boundary plots of the trained models."""
    from torchzoo import report as pages
    from torchzoo.core.paths import artifacts_root

    result = pages.write_report(artifacts_root(artifacts_dir))
    skipped = f"; skipped: {', '.join(result.skipped)}" if result.skipped else ""
    out.print(f"wrote {result.path} ({len(result.images)} plots in {result.path.parent / pages.REPORT_DIR}){skipped}")


@app.command("list")
def list_models(artifacts_dir: ArtifactsDir = None, as_json: JsonFlag = False) -> None:
    """Every registered model, its data, size, metric and which artifacts exist."""
    from torchzoo.core import artifact
    from torchzoo.core.paths import artifacts_root
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
    table.add_column("name", no_wrap=True)
    table.add_column("task", no_wrap=True)
    table.add_column("dataset", max_width=36, overflow="ellipsis", no_wrap=True)
    table.add_column("parameters", justify="right", no_wrap=True)
    table.add_column("metric", no_wrap=True)
    table.add_column("status")
    for r in rows:
        params = f"{r['parameters']:,}" if r["parameters"] is not None else "-"
        table.add_row(r["name"], r["task"], r["dataset"], params, r["metric"], r["status"])
    out.print(table)


def _read_optional(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


from torchzoo.commands import register_all  # noqa: E402  (commands defined in their own modules)

register_all(app)


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
