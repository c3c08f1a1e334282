"""``torchzoo train MODEL|all``: train on the tutorial's recipe (or the quick profile) and write the artifacts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from torchzoo.cli.options import ArtifactsDir, DataDir, JsonFlag, ModelOrAll, ProfileOpt, require_train_extra
from torchzoo.cli.output import Output, fmt_metric, status_cell
from torchzoo.core.errors import TorchzooError

Seed = Annotated[int, typer.Option(help="Random seed (recorded in the manifest).")]
Resume = Annotated[
    bool, typer.Option(help="Continue an interrupted run from its last completed epoch (same profile, seed).")
]


def train(
    model: ModelOrAll,
    profile: ProfileOpt = "full",
    seed: Seed = 0,
    resume: Resume = False,
    data_dir: DataDir = None,
    artifacts_dir: ArtifactsDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Train one model (or all) and write artifacts/<model>/ (state_dict, metrics, curves). Every epoch ends
    with a checkpoint in artifacts/.checkpoints/<model>/, removed when the model is written."""
    require_train_extra("train")
    from torchzoo.core.paths import artifacts_root
    from torchzoo.train import registry
    from torchzoo.train.family import TrainContext
    from torchzoo.train.runner import TrainOutcome, train_model

    out = Output(as_json)
    specs = registry.resolve(model)
    root = artifacts_root(artifacts_dir)
    outcomes: list[TrainOutcome] = []
    with _Progress(out) as progress:
        for spec in specs:
            on_epoch = progress.start(spec.name, spec.full_profile_time if profile == "full" else None)
            ctx = TrainContext(profile=profile, seed=seed, on_epoch=on_epoch, resume=resume)
            try:
                outcome = train_model(spec, ctx, root, data_dir)
                progress.info(f"done: {fmt_metric(outcome.metrics)}")
            except TorchzooError as exc:
                if len(specs) == 1:
                    raise
                outcome = TrainOutcome(spec, 0.0, error=str(exc))
                progress.info(f"failed: {exc}")
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


class _Progress:
    """One rich progress bar per model on stderr: epochs done, the latest validation metrics, and for a long
    full-profile run the time it is known to take."""

    def __init__(self, out: Output) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
        )
        self.bar = Progress(*columns, console=out.err, transient=False)
        self.task: Any = None

    def __enter__(self) -> _Progress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def start(self, name: str, expected_time: str | None) -> Callable[[int, int, dict[str, float]], None]:
        """A bar for ``name``; returns the training loop's per-epoch callback."""
        expected = f" (full profile: {expected_time})" if expected_time else ""
        task = self.task = self.bar.add_task(name, total=None, info=f"loading data{expected}")

        def on_epoch(epoch: int, total: int, row: dict[str, float]) -> None:
            shown = {k: v for k, v in row.items() if k.startswith("val_") or k == "train_loss"}
            info = " ".join(f"{k}={v:.4g}" for k, v in shown.items() if isinstance(v, int | float))
            self.bar.update(task, completed=epoch, total=total, info=info + expected)

        return on_epoch

    def info(self, text: str) -> None:
        self.bar.update(self.task, info=text)
