"""``predict-batch --ray``: the batch engine of :mod:`torchzoo.serve_cli.batch` as a Ray Data job.

The inputs are read by a Ray Data datasource whose read tasks are the plan's chunks (each reads its own image
paths or line range with :func:`batch.read_chunk`), run on the driver's node (no CPU reserved), so a text or CSV
INPUT needs to be there only; ``map_batches`` runs :class:`PredictBatches`, a callable class, on a pool of actors
on any node. The artifact travels with the job (:mod:`torchzoo.serve_cli.shipped`): checked once on the driver,
shipped through Ray's object store, checked again by each actor in a directory of its own before it creates its
one onnxruntime session. Each actor calls :func:`batch.predict_items`, so every row is the one the local path
writes. The driver writes the rows to the same atomic JSONL in input order (Ray Data's ``preserve_order``;
checked). An actor lost with its node is restarted and its batches retried by Ray Data; a job that fails anyway
is one line naming the nodes that were lost, and no output file. Without ``address`` a local Ray instance is
started with ``actors + 1`` CPUs and stopped at the end; with it, the job joins that cluster, whose nodes must
have torchzoo (and, for an image directory, see its files at the same paths: the actors read them).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import sys
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from torchzoo.core.errors import TorchzooError, UserInputError, first_line
from torchzoo.core.text_codec import printable
from torchzoo.serve_cli import batch, shipped
from torchzoo.serve_cli.batch import AtomicJsonl, Item, Plan, Progress, Summary

RAY_INSTALL = "pip install 'torchzoo[ray]'"


def _ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise UserInputError(f"--ray needs Ray Data ({first_line(exc)}): {RAY_INSTALL}") from None
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # its progress notes and stats; ours go to the bar
    # fewer chunks than actors (a small input) leaves actors idle: not worth a warning
    warnings.filterwarnings("ignore", message="The minimum number of concurrent actors", category=UserWarning)
    return ray


def _chunk_table(plan: Plan, chunk: batch.Chunk) -> Iterator[Any]:
    import pyarrow as pa

    items = list(batch.read_chunk(plan, chunk))
    yield pa.table(
        {
            "seq": pa.array([i.seq for i in items], pa.int64()),
            "where": pa.array([json.dumps(i.where) for i in items], pa.string()),
            "value": pa.array([i.value for i in items], pa.string()),
            "error": pa.array([i.error for i in items], pa.string()),
        }
    )


def datasource(plan: Plan) -> Any:
    """A Ray Data datasource with one read task per chunk of ``plan``."""
    ray = _ray()
    bare = dataclasses.replace(plan, chunks=())  # what a read task needs besides its own chunk

    class BatchInputs(ray.data.Datasource):
        def estimate_inmemory_data_size(self) -> int | None:
            return None

        def get_read_tasks(
            self, parallelism: int, per_task_row_limit: int | None = None, data_context: Any = None
        ) -> list[Any]:
            from ray.data.block import BlockMetadata

            tasks = []
            for chunk in plan.chunks:
                rows = len(chunk.files) if plan.kind == "image" else chunk.lines
                metadata = BlockMetadata(num_rows=rows, size_bytes=None, exec_stats=None, input_files=None)
                tasks.append(
                    ray.data.ReadTask(
                        lambda chunk=chunk: _chunk_table(bare, chunk), metadata, per_task_row_limit=per_task_row_limit
                    )
                )
            return tasks

    return BatchInputs()


class PredictBatches:
    """The ``map_batches`` callable class: one predictor (one onnxruntime session) per actor, loaded from the
    artifact's shipped bytes (:func:`shipped.put`'s ObjectRef)."""

    def __init__(self, files: Any, provider: str, variant: str, top_k: int, threshold: float) -> None:
        import os

        import ray

        with shipped.unpacked() as root:
            directory = shipped.write(root / "artifact", shipped.fetch(files))
            self.predictor = batch.load_predictor(directory, provider, variant)
        self.top_k, self.threshold = top_k, threshold
        self.name = f"{ray.util.get_node_ip_address()}:{os.getpid()}"

    def __call__(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        began = time.time()
        items = [
            Item(int(seq), json.loads(where), value, error)
            for seq, where, value, error in zip(
                columns["seq"], columns["where"], columns["value"], columns["error"], strict=True
            )
        ]
        rows = batch.predict_items(self.predictor, items, self.top_k, self.threshold)
        lines = [batch.dump_row(r) for r in rows]
        n = len(rows)
        return {
            "seq": np.asarray([i.seq for i in items], dtype=np.int64),
            "row": np.asarray(lines, dtype=object),
            "failed": np.asarray(["error" in r for r in rows], dtype=bool),
            "actor": np.asarray([self.name] * n, dtype=object),
            "began": np.full(n, began),
            "ended": np.full(n, time.time()),
        }


def _connect(ray: Any, address: str | None, actors: int) -> None:
    """Start a local Ray instance (``ray.shutdown`` stops it) or join the cluster at ``address``."""
    # log_to_driver off: the workers' and raylets' output (a raylet's warnings among it) stays in Ray's log files
    # on their nodes instead of landing on this process's stdout, which holds the --json summary
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
    try:
        if address is None:
            ray.init(address="local", num_cpus=actors + 1, include_dashboard=False, **quiet)
        else:
            ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {printable(address)}" if address else "a local Ray instance"
        raise UserInputError(f"cannot start or join {where}: {first_line(exc)}") from None


def _torchzoo_cause(exc: BaseException) -> TorchzooError | None:
    """The TorchzooError an actor raised, through Ray's wrappers (``cause``, ``__cause__``)."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, TorchzooError):
            return current
        stack += [getattr(current, "cause", None), current.__cause__, current.__context__]
    return None


def on_driver_node(ray: Any) -> dict[str, Any]:
    """Ray remote arguments that run a task on this driver's node (where INPUT is) without reserving a CPU."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    node = ray.get_runtime_context().get_node_id()
    return {"num_cpus": 0, "scheduling_strategy": NodeAffinitySchedulingStrategy(node, soft=False)}


def _dataset(ray: Any, files: Any, plan: Plan, settings: dict[str, Any], batch_size: int, actors: int) -> Any:
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # rows come back in input order
    context.enable_progress_bars = False  # the command shows its own
    context.print_on_execution_start = False
    context.enable_auto_log_stats = False
    inputs = ray.data.read_datasource(
        datasource(plan), override_num_blocks=len(plan.chunks), ray_remote_args=on_driver_node(ray)
    )
    return inputs.map_batches(
        PredictBatches,
        fn_constructor_kwargs={"files": files, **settings},
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=1,
    )


def _write(dataset: Any, writer: AtomicJsonl, on_progress: Progress | None) -> Summary:
    """Stream the job's rows into ``writer`` in input order; counts rows, failures, actors and the actors' span."""
    summary = Summary()
    clock = time.perf_counter()
    last = -1
    began, ended = float("inf"), float("-inf")
    actors: Counter[str] = Counter()
    with writer as out:
        for columns in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            for seq, line, failed in zip(columns["seq"], columns["row"], columns["failed"], strict=True):
                if seq <= last:
                    raise TorchzooError("Ray Data returned rows out of input order; the output was not written")
                last = int(seq)
                out.write(str(line))
                summary.add(json.loads(line) if failed else {})
            summary.first_row_seconds = summary.first_row_seconds or time.perf_counter() - clock
            actors.update(str(a) for a in columns["actor"])
            began = min(began, float(columns["began"].min()))
            ended = max(ended, float(columns["ended"].max()))
            if on_progress:
                on_progress(summary.rows, summary.failed)
    summary.seconds = time.perf_counter() - clock
    summary.compute_seconds = ended - began if summary.rows else None
    summary.actors = dict(sorted(actors.items()))
    return summary


def run_ray(
    directory: str | Path,
    plan: Plan,
    output: str | Path,
    batch_size: int = 256,
    top_k: int = 3,
    threshold: float = 0.5,
    provider: str = "auto",
    variant: str = "fp32",
    actors: int = 2,
    address: str | None = None,
    on_progress: Progress | None = None,
) -> Summary:
    """Predict every input of ``plan`` as a Ray Data job on ``actors`` actors; rows go to ``output``."""
    ray = _ray()
    writer = AtomicJsonl(output)  # refuses a bad --output before Ray starts
    files = shipped.pack(Path(directory), variant)  # read and checked once, here
    # Ray prints its raylets' warnings to the driver's sys.stdout: they go to stderr, so that stdout holds only
    # the --json summary; the driver leaves the cluster (or stops its own instance) before stdout is back
    with contextlib.redirect_stdout(sys.stderr):
        _connect(ray, address, actors)
        batch.interrupt_on_sigterm()  # again: ray.init installs its own handler
        try:
            shipped.check_fits({Path(directory).name: shipped.size(files)})
            settings = {"provider": provider, "variant": variant, "top_k": top_k, "threshold": threshold}
            return _run(ray, _dataset(ray, shipped.put(files), plan, settings, batch_size, actors), writer, on_progress)
        finally:
            ray.shutdown()


def _run(ray: Any, dataset: Any, writer: AtomicJsonl, on_progress: Progress | None) -> Summary:
    """:func:`_write`, with its failures as one line: an actor's TorchzooError unwrapped (as locally), or the
    nodes the cluster lost while the job ran."""
    nodes = _alive(ray)
    try:
        return _write(dataset, writer, on_progress)
    except Exception as exc:
        cause = _torchzoo_cause(exc)
        if cause is not None and cause is not exc:
            raise cause from None
        lost = sorted(nodes - _alive(ray))
        if lost:
            raise TorchzooError(
                f"the Ray Data job failed after losing node(s) {', '.join(lost)} ({first_line(exc)}); "
                "no output was written"
            ) from None
        raise


def _alive(ray: Any) -> set[str]:
    """The addresses of the cluster's alive nodes."""
    return {str(node["NodeManagerAddress"]) for node in ray.nodes() if node.get("Alive")}
