"""The statistics extension, as Triton reports it (``GET /v2/models/{m}/stats``, gRPC ``ModelStatistics``;
tritonclient's ``get_inference_statistics`` reads either): per model, the requests that succeeded and failed
with their total time, the time requests waited in the batcher's queue, the time spent decoding inputs,
running the graph and encoding outputs, and the same per batch size. Times are nanoseconds, as Triton's."""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Duration:
    count: int = 0
    ns: int = 0

    def add(self, ns: int, count: int = 1) -> None:
        self.count += count
        self.ns += ns

    def to_json(self) -> dict[str, int]:
        return {"count": self.count, "ns": self.ns}


@dataclass
class BatchStats:
    compute_infer: Duration = field(default_factory=Duration)


@dataclass
class ModelStats:
    """Counters of one served model; updated on the event loop (the batcher's callbacks run there)."""

    inference_count: int = 0  # samples
    execution_count: int = 0  # graph runs
    last_inference_ms: int = 0
    success: Duration = field(default_factory=Duration)
    fail: Duration = field(default_factory=Duration)
    queue: Duration = field(default_factory=Duration)
    compute_input: Duration = field(default_factory=Duration)
    compute_infer: Duration = field(default_factory=Duration)
    compute_output: Duration = field(default_factory=Duration)
    batches: dict[int, BatchStats] = field(default_factory=lambda: defaultdict(BatchStats))

    def ran(self, samples: int, ns: int) -> None:
        """One graph run of ``samples`` samples that took ``ns``."""
        self.inference_count += samples
        self.execution_count += 1
        self.last_inference_ms = time.time_ns() // 1_000_000
        self.compute_infer.add(ns)
        self.batches[samples].compute_infer.add(ns)

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        """Around answering one request: a success, or a failure when it raises; its time either way."""
        start = time.perf_counter_ns()
        try:
            yield
        except BaseException:
            self.fail.add(time.perf_counter_ns() - start)
            raise
        self.success.add(time.perf_counter_ns() - start)

    @staticmethod
    @contextlib.contextmanager
    def timing(duration: Duration) -> Iterator[None]:
        start = time.perf_counter_ns()
        yield
        duration.add(time.perf_counter_ns() - start)

    def to_json(self, name: str, version: str) -> dict[str, Any]:
        """One entry of ``model_stats``, in Triton's REST layout."""
        empty = Duration().to_json()
        return {
            "name": name,
            "version": version,
            "last_inference": self.last_inference_ms,
            "inference_count": self.inference_count,
            "execution_count": self.execution_count,
            "inference_stats": {
                "success": self.success.to_json(),
                "fail": self.fail.to_json(),
                "queue": self.queue.to_json(),
                "compute_input": self.compute_input.to_json(),
                "compute_infer": self.compute_infer.to_json(),
                "compute_output": self.compute_output.to_json(),
                "cache_hit": empty,
                "cache_miss": empty,
            },
            "batch_stats": [
                {
                    "batch_size": size,
                    "compute_input": empty,
                    "compute_infer": batch.compute_infer.to_json(),
                    "compute_output": empty,
                }
                for size, batch in sorted(self.batches.items())
            ],
        }
