"""``torchzoo bench``: latency, throughput, sizes and memory per runtime and peer; ``--serve``: the HTTP load
test; ``--scale-out``: Ray Serve replicas. Results go to benchmarks/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from torchzoo.cli.artifacts import exported_names
from torchzoo.cli.options import ArtifactOrAll, ArtifactsDir, DataDir, JsonFlag, require_train_extra
from torchzoo.cli.output import Output
from torchzoo.core.errors import TorchzooError, UserInputError

Quick = Annotated[bool, typer.Option(help="A few rounds only (checks that bench runs; numbers are rough).")]
Training = Annotated[bool, typer.Option(help="Also time the names training against the tutorial's loop.")]
TutorialSteps = Annotated[int, typer.Option(help="Tutorial-loop steps timed (scaled to 100,000).")]
ColdStartRepeats = Annotated[int, typer.Option(help="Cold-start runs per command (0: skip).")]
OutDir = Annotated[Path, typer.Option("--out", help="Where results.json and results.md go.")]
Update = Annotated[
    bool, typer.Option(help="Replace only the rows measured now in an existing results.json; keep the rest.")
]
Serve = Annotated[bool, typer.Option("--serve", help="Instead: the HTTP load test of 'torchzoo serve' with wrk.")]
Peers = Annotated[
    bool,
    typer.Option(
        "--peers", help="With --serve: torchzoo (REST, gRPC) beside KServe, MLServer, LitServe and BentoML, and a soak."
    ),
]
ScaleOut = Annotated[
    bool, typer.Option("--scale-out", help="Instead: 'serve --ray' 1 vs 2 replicas on a local two-node Ray cluster.")
]


def bench(
    model: ArtifactOrAll = "all",
    quick: Quick = False,
    training: Training = False,
    tutorial_steps: TutorialSteps = 5000,
    cold_start_repeats: ColdStartRepeats = 5,
    out_dir: OutDir = Path("benchmarks"),
    update: Update = False,
    serve: Serve = False,
    peers: Peers = False,
    scale_out: ScaleOut = False,
    artifacts_dir: ArtifactsDir = None,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Latency, throughput, FLOPs, sizes and memory per runtime, in one run, for a zoo model or one packaged from
    your own code (timed on inputs made from its manifest); writes benchmarks/results.*
    (with --serve: the HTTP load test, benchmarks/serve_results.*; with --scale-out: Ray Serve replicas,
    benchmarks/scale_out_results.*)."""
    require_train_extra("bench")
    from torchzoo.core.paths import artifacts_root

    out = Output(as_json)
    if peers and not serve:
        raise UserInputError("--peers goes with --serve")
    if scale_out:
        from torchzoo.bench import ray_serve_load

        root = artifacts_root(artifacts_dir)
        results = ray_serve_load.run(root, seconds=2.0 if quick else 8.0, rounds=1 if quick else 2)
        results = ray_serve_load.with_batch(results, root, quick)
        _load_test_results(out, out_dir / "scale_out_results", results, ray_serve_load.render(results))
    elif serve and peers:
        from torchzoo.bench import serve_peers

        root = artifacts_root(artifacts_dir)
        seconds, rounds, soak = (2.0, 1, 11.0) if quick else (10.0, 3, 60.0)
        results = serve_peers.run(root, seconds=seconds, rounds=rounds, soak_seconds=soak)
        _load_test_results(out, out_dir / "serve_peers", results, serve_peers.render(results))
    elif serve:
        from torchzoo.bench import serve_load

        root = artifacts_root(artifacts_dir)
        results = serve_load.run(root, seconds=1.0 if quick else 4.0, soak_seconds=5 if quick else 60)
        _load_test_results(out, out_dir / "serve_results", results, serve_load.render(results))
    else:
        from torchzoo.bench.models import benched

        root, names = exported_names(model, artifacts_dir)
        specs = benched(root, names)
        measure = {"quick": quick, "training": training, "tutorial_steps": tutorial_steps, "data_dir": data_dir}
        _bench_models(out, root, specs, out_dir, update, cold_start_repeats, **measure)


def _bench_models(
    out: Output,
    root: Path,
    specs: list[Any],
    out_dir: Path,
    update: bool,
    cold_start_repeats: int,
    *,
    quick: bool,
    training: bool,
    tutorial_steps: int,
    data_dir: Path | None,
) -> None:
    """The runtimes and peers of every model, side by side, into OUT/results.{json,md}."""
    from rich.progress import Progress

    from torchzoo import bench as b
    from torchzoo.bench.models import OwnModel

    earlier = b.read_results(out_dir) if update else None  # refuse before measuring anything
    config = b.BenchConfig(quick=quick)
    results: dict[str, Any] = {"environment": b.environment(), "quick": quick, "models": []}
    with Progress(console=out.err, transient=True) as progress:
        task = progress.add_task("bench", total=len(specs))
        for spec in specs:
            progress.update(task, description=f"bench {spec.name}")
            results["models"].append(b.bench_model(spec, root, config))
            progress.advance(task)
        tuned = [s for s in specs if s.name in b.SESSION_TUNED and not isinstance(s, OwnModel)]
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
