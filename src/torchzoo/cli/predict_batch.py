"""``torchzoo predict-batch NAME INPUT --output rows.jsonl``: predict a directory of images, a CSV, a text file
of names or an .npz of tensor rows in batches, locally or as a Ray Data job (``--ray``), one JSONL row per input."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from torchzoo.cli.artifacts import artifact_directory
from torchzoo.cli.options import ArtifactsDir, JsonFlag, ModelOrPath, ProviderOpt, Threshold, TopK, VariantOpt
from torchzoo.cli.output import Output

Source = Annotated[
    str,
    typer.Argument(
        metavar="INPUT",
        help="Image models: a directory of PNG/JPEG files (recursive); tabular models: a CSV file; "
        "names: a text file, one name per line; a packaged model on raw tensors: an .npz file whose keys are "
        "the input names (first axis: the rows).",
    ),
]
OutputFile = Annotated[str, typer.Option("--output", "-o", help="The JSONL file of rows (written atomically).")]
BatchSize = Annotated[int, typer.Option(min=1, max=10_000, help="Inputs per onnxruntime run.")]
Ray = Annotated[bool, typer.Option("--ray", help="Run as a Ray Data job (the ray extra).")]
Address = Annotated[str | None, typer.Option(help="With --ray: join this Ray cluster (e.g. 'auto', 'HOST:6379').")]
Actors = Annotated[int | None, typer.Option(min=1, help="With --ray: actors, each with its own session (default 2).")]


def predict_batch(
    model: ModelOrPath,
    source: Source,
    output: OutputFile,
    batch_size: BatchSize = 256,
    top_k: TopK = 3,
    threshold: Threshold = 0.5,
    provider: ProviderOpt = "auto",
    variant: VariantOpt = "fp32",
    ray: Ray = False,
    address: Address = None,
    actors: Actors = None,
    artifacts_dir: ArtifactsDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Predict every input of INPUT in batches; each JSONL row is what 'predict --json' gives for that input,
    plus its 'file' or 'line'. A bad input is a row with an 'error'; exit 1 if any row failed."""
    from torchzoo.core.errors import UserInputError
    from torchzoo.core.text_codec import printable
    from torchzoo.serve_cli import batch

    out = Output(as_json)
    ray_only = {"--address": address, "--actors": actors}
    if not ray and any(v is not None for v in ray_only.values()):
        given = [k for k, v in ray_only.items() if v is not None]
        raise UserInputError(f"{', '.join(given)} only {'applies' if len(given) == 1 else 'apply'} with --ray")
    directory = artifact_directory(model, artifacts_dir)
    predictor = batch.load_predictor(directory, provider, variant)
    manifest = predictor.manifest
    plan = batch.plan_inputs(manifest["preprocessing"].get("kind"), source, inputs=manifest["inputs"])
    if Path(output).resolve() == Path(source).resolve():
        raise UserInputError(f"--output {printable(output)} is the input itself")
    batch.AtomicJsonl(output)  # a bad --output is refused before any work
    if plan.skipped:
        out.note(f"skipping {plan.skipped} file(s) in {source} that are not PNG/JPEG")
    with _Progress(out, f"predict-batch {predictor.name}", plan.total) as on_progress:
        batch.interrupt_on_sigterm()
        if ray:
            from torchzoo.serve_cli import batch_ray

            summary = batch_ray.run_ray(
                directory, plan, output, batch_size, top_k, threshold, provider, variant, actors or 2, address,
                on_progress,
            )  # fmt: skip
        else:
            summary = batch.run_local(predictor, plan, output, batch_size, top_k, threshold, on_progress)
    data = {
        "model": predictor.name,
        "provider": predictor.provider,
        "input": source,
        "output": output,
        "ray": ray,
        "rows": summary.rows,
        "failed": summary.failed,
        "skipped_files": plan.skipped,
        "seconds": round(summary.seconds, 3),
        "first_row_seconds": None if summary.first_row_seconds is None else round(summary.first_row_seconds, 3),
        "rows_per_second": round(summary.rows / summary.seconds, 1) if summary.seconds else None,
        "ray_compute_seconds": None if summary.compute_seconds is None else round(summary.compute_seconds, 3),
        "ray_actors": summary.actors,
        "first_errors": summary.errors,
    }
    out.result(data, lambda: out.text(_summary_text(data)))
    if summary.failed:
        raise typer.Exit(1)


class _Progress:
    """A rich progress bar on stderr (the Output layer's console); yields the engine's progress callback."""

    def __init__(self, out: Any, title: str, total: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failed"),
            TimeElapsedColumn(),
            console=out.err,
            transient=False,
        )
        self.task = self.bar.add_task(title, total=total, failed=0)

    def __enter__(self) -> Any:
        self.bar.start()
        return lambda rows, failed: self.bar.update(self.task, completed=rows, failed=failed)

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:  # a CSV's header and blank lines are counted in the total, not predicted
            self.bar.update(self.task, total=self.bar.tasks[0].completed)
        self.bar.stop()


def _summary_text(data: dict[str, Any]) -> str:
    from torchzoo.core.text_codec import printable

    speed = f", {data['rows_per_second']:,.0f} rows/s" if data["rows_per_second"] else ""
    lines = [
        f"{data['model']}: {data['rows']:,} rows, {data['failed']:,} failed -> {printable(data['output'])} "
        f"({data['seconds']:.1f} s{speed}{', Ray Data' if data['ray'] else ''})"
    ]
    for row in data["first_errors"]:
        where = f"line {row['line']}: " if "line" in row else ""  # an image's error names its file
        lines.append(f"  {where}{printable(row['error'])}")
    if data["failed"] > len(data["first_errors"]):
        lines.append(f"  ... and {data['failed'] - len(data['first_errors']):,} more (rows with an 'error')")
    return "\n".join(lines)
