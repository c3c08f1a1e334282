"""The server's Prometheus metrics (``/metrics``) and the fixed label values a request maps to."""

from __future__ import annotations

from collections.abc import Container

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_PATHS = {"/v2/health/live": "live", "/v2/health/ready": "ready", "/v2": "server", "/metrics": "metrics"}


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "torchzoo_requests",
            "Requests by model, endpoint and status",
            ["model", "endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "torchzoo_request_seconds",
            "Request latency",
            ["model", "endpoint"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
        )
        self.batch = Histogram(
            "torchzoo_batch_size",
            "Samples per onnxruntime run",
            ["model"],
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
        )
        self.queue = Gauge("torchzoo_queue_depth", "Requests waiting for a batch", ["model"], registry=self.registry)


def labels(path: str, models: Container[str]) -> tuple[str, str]:
    """The metrics labels of a request: the served model it names (else ""), and which endpoint, from a
    fixed set, so that a client naming random paths or models cannot grow the label sets."""
    parts = path.split("/")
    named = parts[3].split(":")[0] if len(parts) > 3 and parts[2] == "models" else ""
    model = named if named in models else ""
    if parts[2:3] == ["repository"]:
        return "", "repository"
    if path.endswith("/infer"):
        return model, "infer"
    if path.endswith(":predict"):
        return model, "predict"
    if named:
        return model, "ready" if path.endswith("/ready") else "metadata"
    return "", _PATHS.get(path, "static" if path.startswith("/static/") else "other")
