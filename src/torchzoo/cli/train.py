"""``torchzoo train MODEL|all``: train on the tutorial's recipe (or the quick profile) and write the artifacts."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from torchzoo.cli.options import ArtifactsDir, DataDir, JsonFlag, ModelOrAll, ProfileOpt, require_train_extra
from torchzoo.cli.output import Output, fmt_metric, status_cell
from torchzoo.core.errors import TorchzooError


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
                progress.update(task, info=f"done: {fmt_metric(outcome.metrics)}")
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
                (o.spec.name, fmt_metric(o.metrics), f"{o.seconds:.1f}", status_cell(o.error is None, o.error or ""))
                for o in outcomes
            ],
        ),
    )
    if any(o.error for o in outcomes):
        raise typer.Exit(1)
