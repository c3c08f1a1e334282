"""The ``torchzoo`` command line (typer). Every command imports its room lazily, so ``predict`` never
imports torch or training code and starts fast. Results go through one output layer
(:class:`torchzoo.output.Output`: ``--json`` everywhere, tables that are never cut); errors are one line
on stderr (JSON on stdout with ``--json``), exit 2 for bad input, 1 for failures."""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer

from torchzoo.core.errors import ArtifactError, TorchzooError, UserInputError, first_line
from torchzoo.options import (
    ArtifactsDir,
    DataDir,
    FormatOpt,
    JsonFlag,
    ModelOrAll,
    ProfileOpt,
    ProviderOpt,
    VariantOpt,
    require_train_extra,
)
from torchzoo.output import Cell, Output, to_json

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Train the PyTorch tutorial models, export them with proven equivalence, serve them with onnxruntime.",
)


def _fmt_metric(metrics: dict[str, Any] | None) -> str:
    for key, value in (metrics or {}).items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            return f"{key}={value:.4g}"
    return "-"


def _status(passed: bool, text: str = "") -> Cell:
    return (text or "ok", "green") if passed else (text or "FAIL", "red")


@app.command()
def train(
    model: ModelOrAll,
    profile: ProfileOpt = "full",
    seed: Annotated[int, typer.Option(help="Random seed (recorded in the manifest).")] = 0,
    resume: Annotated[
        bool, typer.Option(help="Continue an interrupted run from its last completed epoch (same profile, seed).")
    ] = False,
    data_dir: DataDir = None,
    artifacts_dir: ArtifactsDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Train one model (or all) and write artifacts/<model>/ (state_dict, metrics, curves). Every epoch ends
    with a checkpoint in artifacts/.checkpoints/<model>/, removed when the model is written."""
    require_train_extra("train")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from torchzoo.core.paths import artifacts_root
    from torchzoo.train import registry
    from torchzoo.train.family import TrainContext
    from torchzoo.train.runner import TrainOutcome, train_model

    out = Output(as_json)
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
    with Progress(*columns, console=out.err, transient=False) as progress:
        for spec in specs:
            long_run = spec.full_profile_time is not None and profile == "full"
            expected = f" (full profile: {spec.full_profile_time})" if long_run else ""
            task = progress.add_task(spec.name, total=None, info=f"loading data{expected}")

            def on_epoch(
                epoch: int, total: int, row: dict[str, float], task: Any = task, expected: str = expected
            ) -> None:
                shown = {k: v for k, v in row.items() if k.startswith("val_") or k == "train_loss"}
                info = " ".join(f"{k}={v:.4g}" for k, v in shown.items() if isinstance(v, int | float))
                progress.update(task, completed=epoch, total=total, info=info + expected)

            ctx = TrainContext(profile=profile, seed=seed, on_epoch=on_epoch, resume=resume)
            try:
                outcome = train_model(spec, ctx, root, data_dir)
                progress.update(task, info=f"done: {_fmt_metric(outcome.metrics)}")
            except TorchzooError as exc:
                if len(specs) == 1:
                    raise
                outcome = TrainOutcome(spec, 0.0, error=str(exc))
                progress.update(task, info=f"failed: {exc}")
            outcomes.append(outcome)
    data = {
        "profile": profile,
        "artifacts": str(root),
        "models": [
            {"model": o.spec.name, "metrics": o.metrics, "seconds": o.seconds, "error": o.error} for o in outcomes
        ],
    }
    out.result(
        data,
        lambda: out.table(
            f"trained ({profile} profile) -> {root}",
            ("model", "metric", "seconds", "status"),
            [
                (o.spec.name, _fmt_metric(o.metrics), f"{o.seconds:.1f}", _status(o.error is None, o.error or ""))
                for o in outcomes
            ],
        ),
    )
    if any(o.error for o in outcomes):
        raise typer.Exit(1)


@app.command()
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
    from torchzoo.export.exporter import export_model, resolve_formats

    formats = resolve_formats(format)
    root, specs = _trained_specs(model, artifacts_dir)
    checks: list[dict[str, Any]] = []
    for spec in specs:
        try:
            outcome = export_model(spec, formats, root, data_dir)
        except TorchzooError as exc:
            if len(specs) == 1:
                raise
            checks.append(_error_row(spec.name, format, str(exc)))
            continue
        for report in outcome.reports:
            checks.append(_report_row(spec.name, report, outcome.failure_report))
    _print_checks(Output(as_json), checks, "export + equivalence check")


def _export_triton(
    model: str, format: str, repository: Path | None, gpu: bool, artifacts_dir: Path | None, out: Output
) -> None:
    """``export --format triton``: each verified artifact becomes the next version in the repository."""
    if format != "triton":
        raise UserInputError("--repository and --gpu go with --format triton only")
    if repository is None:
        raise UserInputError("--format triton needs --repository DIR (the Triton model repository to write to)")
    from torchzoo.export.triton import export_triton

    root, specs = _trained_specs(model, artifacts_dir, need="manifest.json")
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
        (r["model"], str(r["version"] or "-"), r["directory"] or "-", _status(not r["error"], r["error"] or ""))
        for r in rows
    ]
    title = f"Triton model repository {repository} (verified before writing)"
    out.result(rows, lambda: out.table(title, ("model", "version", "directory", "status"), cells))
    if any(r["error"] for r in rows):
        raise typer.Exit(1)


@app.command()
def verify(
    model: ModelOrAll = "all",
    artifacts_dir: ArtifactsDir = None,
    as_json: JsonFlag = False,
    key: Annotated[list[Path] | None, typer.Option("--key", help="Also check model.sig with this public key.")] = None,
) -> None:
    """Re-hash every artifact file and re-run every equivalence check from the files on disk alone."""
    require_train_extra("verify")
    from torchzoo.export.exporter import verify_model

    root, specs = _trained_specs(model, artifacts_dir, need="manifest.json")
    if key:  # a signature that does not verify is refused (exit 2) before any other file is used
        from torchzoo.core.signing import verify_signature

        for spec in specs:
            verify_signature(root / spec.name, key)
    checks: list[dict[str, Any]] = []
    for spec in specs:
        try:
            checks += [_report_row(spec.name, r) for r in verify_model(spec, root)]
        except TorchzooError as exc:
            if len(specs) == 1 and isinstance(exc, UserInputError):  # one refused artifact: exit 2, one line
                raise
            checks.append(_error_row(spec.name, "-", str(exc)))
    _print_checks(Output(as_json), checks, "verify: files re-hashed, every check re-run")


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


def _error_row(model: str, format: str, error: str) -> dict[str, Any]:
    return {"model": model, "format": format, "passed": False, "error": error, "failures": [error]}


def _report_row(model: str, report: Any, failure_report: Path | None = None) -> dict[str, Any]:
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
        # a refused int8/fp16 variant is not published and not a failure (torchzoo.export.variants)
        "refused": getattr(report, "refused", None),
        "passed": report.passed or bool(getattr(report, "refused", None)),
        "error": None if report.passed else report.summary(),
        "failures": report.failures(),
        "failure_report": str(failure_report) if failure_report and not report.passed else None,
    }


def _verdict(check: dict[str, Any]) -> str:
    if check.get("refused"):
        return "refused"
    return "pass" if check["passed"] else f"FAIL ({len(check['failures'])})"


def _print_checks(out: Output, checks: list[dict[str, Any]], title: str) -> None:
    """The per model x format check table (or JSON), then every failing row; exit 1 if any failed."""
    failed = [c for c in checks if not c["passed"]]

    def num(value: float | None) -> str:
        return "-" if value is None else f"{value:.1e}"

    def render() -> None:
        rows = []
        for c in checks:
            agree = c.get("heldout_top1_agreement")
            wider = "*" if c.get("case_tolerance") or c.get("case_rtol") else ""
            rows.append(
                (
                    c["model"],
                    c["format"],
                    num(c.get("heldout_max_abs")),
                    num(c.get("random_max_abs")),
                    num(c.get("tolerance")) + wider,
                    "-" if agree is None else f"{agree:.0%}" if agree in (0.0, 1.0) else f"{agree:.2%}",
                    _status(c["passed"], _verdict(c)),
                )
            )
        columns = ("model", "format", "held-out max|diff|", "random max|diff|", "tol", "top-1 agree", "check")
        out.table(title, columns, rows)
        if any(c.get("case_tolerance") or c.get("case_rtol") for c in checks):
            out.text("* some cases have a wider tolerance, justified in equivalence.json (case_tolerances)")
        for c in checks:
            if c.get("refused"):
                out.text(f"refused, not published: {c['model']} {c['format']}: {c['refused']}")
        for c in failed:
            for failure in c["failures"]:
                out.text(f"FAIL {c['model']}: {failure}")
        for path in sorted({c["failure_report"] for c in failed if c.get("failure_report")}):
            out.text(f"nothing published; report: {path}")

    out.result({"passed": not failed, "checks": checks}, render)
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
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="How many labels to show.")] = 3,
    threshold: Annotated[float, typer.Option(min=0.0, max=1.0, help="Binary/multi-label threshold.")] = 0.5,
    provider: ProviderOpt = "auto",
    variant: VariantOpt = "fp32",
    as_json: JsonFlag = False,
    artifacts_dir: ArtifactsDir = None,
    require_signature: Annotated[
        bool, typer.Option("--require-signature", help="Refuse an artifact whose model.sig does not verify.")
    ] = False,
    key: Annotated[list[Path] | None, typer.Option("--key", help="Trusted public key (PEM) for model.sig.")] = None,
) -> None:
    """Predict with the exported ONNX graph through onnxruntime (torch is never imported)."""
    from torchzoo.core.paths import artifacts_root
    from torchzoo.core.tasks import get_task
    from torchzoo.serve_cli import load

    out = Output(as_json)
    directory = Path(model) if Path(model).is_dir() else artifacts_root(artifacts_dir) / model
    if not directory.is_dir():
        raise ArtifactError(
            f"no artifacts for '{model}' in {directory.parent}; "
            f"run 'torchzoo train {model}' then 'torchzoo export {model}'{_model_hint(model)}"
        )
    if require_signature and not key:
        raise UserInputError("--require-signature needs --key PUBLIC_KEY.pem")
    predictor = load(directory, provider, trusted_keys=key if require_signature or key else None, variant=variant)
    out.note(f"provider: {predictor.provider}" + (f" ({predictor.notice})" if predictor.notice else ""))
    results = predictor.predict(inputs, top_k=top_k, threshold=threshold)
    task = get_task(predictor.task)

    def render() -> None:
        title = f"{predictor.name}: top-{top_k}" if task.name == "classification" else predictor.name
        columns = ["input", *task.columns(top_k, threshold, len(predictor.labels))]
        out.table(title, columns, [[r["input"], *task.cells(r, top_k)] for r in results])

    out.result({"model": predictor.name, "provider": predictor.provider, "results": results}, render)


def _model_hint(name: str) -> str:
    """The closest registered name, where the registry can be read (it needs the train extra)."""
    try:
        from torchzoo.train import registry

        known = registry.names()
    except ImportError:
        return ""
    from torchzoo.options import closest

    return "" if name in known else closest(name, known)


@app.command()
def bench(
    model: ModelOrAll = "all",
    quick: Annotated[bool, typer.Option(help="A few rounds only (checks that bench runs; numbers are rough).")] = False,
    training: Annotated[bool, typer.Option(help="Also time the names training against the tutorial's loop.")] = False,
    tutorial_steps: Annotated[int, typer.Option(help="Tutorial-loop steps timed (scaled to 100,000).")] = 5000,
    cold_start_repeats: Annotated[int, typer.Option(help="Cold-start runs per command (0: skip).")] = 5,
    out_dir: Annotated[Path, typer.Option("--out", help="Where results.json and results.md go.")] = Path("benchmarks"),
    update: Annotated[
        bool, typer.Option(help="Replace only the rows measured now in an existing results.json; keep the rest.")
    ] = False,
    serve: Annotated[
        bool, typer.Option("--serve", help="Instead: the HTTP load test of 'torchzoo serve' with wrk.")
    ] = False,
    scale_out: Annotated[
        bool,
        typer.Option("--scale-out", help="Instead: 'serve --ray' 1 vs 2 replicas on a local two-node Ray cluster."),
    ] = False,
    artifacts_dir: ArtifactsDir = None,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Latency, throughput, FLOPs, sizes and memory per runtime, in one run; writes benchmarks/results.*
    (with --serve: the HTTP load test, benchmarks/serve_results.*; with --scale-out: Ray Serve replicas,
    benchmarks/scale_out_results.*)."""
    require_train_extra("bench")
    from rich.progress import Progress

    from torchzoo import bench as b

    out = Output(as_json)
    if scale_out:
        from torchzoo.bench import ray_serve_load
        from torchzoo.core.paths import artifacts_root

        root = artifacts_root(artifacts_dir)
        results = ray_serve_load.run(root, seconds=2.0 if quick else 8.0, rounds=1 if quick else 2)
        results = ray_serve_load.with_batch(results, root, quick)
        _load_test_results(out, out_dir / "scale_out_results", results, ray_serve_load.render(results))
        return
    if serve:
        from torchzoo.bench import serve_load
        from torchzoo.core.paths import artifacts_root

        results = serve_load.run(
            artifacts_root(artifacts_dir), seconds=1.0 if quick else 4.0, soak_seconds=5 if quick else 60
        )
        _load_test_results(out, out_dir / "serve_results", results, serve_load.render(results))
        return
    root, specs = _trained_specs(model, artifacts_dir, need="manifest.json")
    earlier = b.read_results(out_dir) if update else None  # refuse before measuring anything
    config = b.BenchConfig(quick=quick)
    results: dict[str, Any] = {"environment": b.environment(), "quick": quick, "models": []}
    with Progress(console=out.err, transient=True) as progress:
        task = progress.add_task("bench", total=len(specs))
        for spec in specs:
            progress.update(task, description=f"bench {spec.name}")
            results["models"].append(b.bench_model(spec, root, config))
            progress.advance(task)
        tuned = [s for s in specs if s.name in b.SESSION_TUNED]
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
    out.result(results, lambda: out.text(md_path.read_text()))
    out.note(f"wrote {json_path} and {md_path}")


def _load_test_results(out: Output, stem: Path, results: dict[str, Any], markdown: str) -> None:
    """A load test's STEM.json and STEM.md, shown; lost requests fail the command."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown)
    out.result(results, lambda: out.text(markdown))
    if results["lost"]:
        raise TorchzooError(f"{results['lost']} requests were lost (socket errors or timeouts)")


@app.command()
def report(artifacts_dir: ArtifactsDir = None, as_json: JsonFlag = False) -> None:
    """Write <artifacts>/report.md: the lab's accuracy, loss, fit and boundary plots of the trained models."""
    require_train_extra("report")
    from torchzoo import report as pages
    from torchzoo.core.paths import artifacts_root

    out = Output(as_json)
    result = pages.write_report(artifacts_root(artifacts_dir))
    data = {"report": str(result.path), "images": [str(p) for p in result.images], "skipped": result.skipped}
    skipped = f"; skipped: {', '.join(result.skipped)}" if result.skipped else ""
    plots = result.path.parent / pages.REPORT_DIR
    out.result(data, lambda: out.text(f"wrote {result.path} ({len(result.images)} plots in {plots}){skipped}"))


@app.command("list")
def list_models(artifacts_dir: ArtifactsDir = None, as_json: JsonFlag = False) -> None:
    """Every registered model, its data, size, metric and which artifacts exist. Without the train extra:
    the exported artifacts found under the artifact root."""
    from torchzoo.core import artifact
    from torchzoo.core.paths import artifacts_root

    out = Output(as_json)
    root = artifacts_root(artifacts_dir)
    try:
        from torchzoo.train import registry

        known = [(spec.name, spec.task, spec.dataset) for spec in registry.models()]
    except ImportError:  # the runtime install: no registry without torch, so list what is on disk
        out.note("the train extra is not installed: listing the artifacts found, not every registered model")
        known = [(p.name, "", "") for p in sorted(root.glob("*")) if (p / artifact.MANIFEST).is_file()]
    rows = []
    for name, task, dataset in known:
        directory = root / name
        record = _read_json_or_none(directory / artifact.TRAIN_RECORD)
        manifest = _read_json_or_none(directory / artifact.MANIFEST)
        status = "not trained" if record is None else "trained"
        if manifest:
            status = "exported: " + ", ".join(manifest.get("formats", {}))
            task = task or str(manifest.get("task", ""))
        rows.append(
            {
                "name": name,
                "task": task,
                "dataset": dataset,
                "parameters": record.get("parameters") if record else None,
                "metric": _fmt_metric(record.get("metrics")) if record else "-",
                "profile": record.get("profile") if record else None,
                "status": status,
            }
        )

    def render() -> None:
        columns = ("name", "task", "dataset", "parameters", "metric", "status")
        cells = [
            (
                r["name"],
                r["task"],
                r["dataset"],
                "-" if r["parameters"] is None else f"{r['parameters']:,}",
                r["metric"],
                r["status"],
            )
            for r in rows
        ]
        out.table(f"torchzoo models ({root})", columns, cells)

    out.result(rows, render)


def _read_json_or_none(path: Path) -> Any:
    """A JSON file's content, or None if it is absent or unreadable (list shows what it can)."""
    from torchzoo.core import artifact

    try:
        return artifact.read_json(path) if path.is_file() else None
    except (OSError, ValueError, TorchzooError):
        return None


from torchzoo.commands import register_all  # noqa: E402  (commands defined in their own modules)

register_all(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point: usage errors, our errors and internal errors all become one line and an exit code
    (``TORCHZOO_DEBUG=1`` adds the traceback of an internal error)."""
    args = sys.argv[1:] if argv is None else argv
    json_mode = "--json" in args
    try:
        code = app(args=args, prog_name="torchzoo", standalone_mode=False)
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.Abort:
        _report_error("aborted", 130, json_mode)
        code = 130
    except TorchzooError as exc:
        _report_error(str(exc), exc.exit_code, json_mode)
        code = exc.exit_code
    except typer.TyperException as exc:  # usage errors: unknown option, bad choice, missing argument
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare 'torchzoo': the help is the answer
            sys.stdout.write(exc.format_message() + "\n")
        else:
            _report_error(exc.format_message(), exc.exit_code, json_mode)
        code = exc.exit_code
    except (KeyboardInterrupt, BrokenPipeError):
        code = 130
    except Exception as exc:  # internal error: still one line, never a traceback unless asked
        if os.environ.get("TORCHZOO_DEBUG") == "1":
            traceback.print_exc()
        _report_error(f"internal error: {first_line(exc)} (TORCHZOO_DEBUG=1 shows the traceback)", 1, json_mode)
        code = 1
    sys.exit(code if isinstance(code, int) else 0)


def _report_error(message: str, code: int, json_mode: bool) -> None:
    message = " ".join(message.split())
    if json_mode:
        sys.stdout.write(to_json({"error": message, "exit_code": code}) + "\n")
    else:
        sys.stderr.write(f"torchzoo: error: {message}\n")


if __name__ == "__main__":
    main()
