"""The Ray paths' own logic, without a Ray cluster (tests/test_ray_serve.py and the predict-batch Ray test start
one, in the slow lane): serve --ray's scaling options, deployment options, node headers and request router;
predict-batch --ray's driver-side writer and error unwrapping."""

from __future__ import annotations

import asyncio
import json
import random
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from torchzoo.core.errors import TorchzooError, UserInputError
from torchzoo.serve_cli import batch_ray
from torchzoo.serve_cli.batch import AtomicJsonl
from torchzoo.serve_cli.server import ray_deploy
from torchzoo.serve_cli.server.app import ServeConfig
from torchzoo.serve_cli.server.ray_router import LessBusyOfTwo

from support import asgi_request


def test_replicas_or_autoscale_become_one_scaling() -> None:
    assert ray_deploy.scaling(None, None) == ray_deploy.Scaling(replicas=1)
    assert ray_deploy.scaling(3, None).describe() == "3 replicas"
    auto = ray_deploy.scaling(None, "1:4")
    assert auto.autoscaling and (auto.minimum, auto.maximum) == (1, 4)
    assert auto.describe() == "autoscaling 1-4 replicas"
    for bad, says in [
        ("4", "expected MIN:MAX"),
        ("a:b", "expected MIN:MAX"),
        ("0:0", "MAX must be at least 1"),
        ("3:2", "MIN (3) is larger than MAX (2)"),
    ]:
        with pytest.raises(UserInputError, match=re.escape(f"--autoscale {bad}: {says}")):
            ray_deploy.scaling(None, bad)
    with pytest.raises(UserInputError, match="exclude each other"):
        ray_deploy.scaling(2, "1:2")


def test_deployment_options_follow_the_scaling_and_the_batch_size() -> None:
    config = ServeConfig(max_batch=16)
    fixed = ray_deploy.deployment_options(ray_deploy.scaling(2, None), config, 1.5)
    assert fixed["num_replicas"] == 2 and "autoscaling_config" not in fixed
    assert fixed["ray_actor_options"] == {"num_cpus": 1.5}
    assert fixed["max_ongoing_requests"] == ray_deploy.MAX_ONGOING_FACTOR * 16
    assert fixed["request_router_config"] == {"request_router_class": ray_deploy.ROUTER}
    auto = ray_deploy.deployment_options(ray_deploy.scaling(None, "0:3"), config, 1.0)
    assert "num_replicas" not in auto
    assert auto["autoscaling_config"] == {
        "min_replicas": 0,
        "max_replicas": 3,
        "initial_replicas": 1,  # at least one, so the first request has a replica
        "target_ongoing_requests": 8,
    }


def test_the_router_path_names_the_router_class() -> None:
    module, _, name = ray_deploy.ROUTER.rpartition(".")
    assert module == LessBusyOfTwo.__module__ and name == LessBusyOfTwo.__name__


def test_node_headers_are_added_to_every_http_response() -> None:
    async def app(scope: dict, receive: object, send: object) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})

    wrapped = ray_deploy.NodeHeaders(app, {ray_deploy.NODE_HEADER: "node-1", ray_deploy.REPLICA_HEADER: "r7"})
    status, headers, body = asgi_request(wrapped, "GET", "/v2/health/live")
    assert (status, body) == (200, b"ok")
    assert headers["content-type"] == "text/plain"
    assert headers[ray_deploy.NODE_HEADER] == "node-1" and headers[ray_deploy.REPLICA_HEADER] == "r7"


def test_the_router_offers_two_distinct_replicas_and_backs_off_when_both_are_full() -> None:
    replicas = [f"replica-{i}" for i in range(5)]
    pending = SimpleNamespace(routing_context=SimpleNamespace(should_backoff=False))
    random.seed(0)
    seen: set[str] = set()
    for _ in range(50):
        [choice] = asyncio.run(LessBusyOfTwo.choose_replicas(None, replicas, pending))
        assert len(choice) == 2 and len(set(choice)) == 2 and set(choice) <= set(replicas)
        seen |= set(choice)
    assert seen == set(replicas)  # drawn from every replica, wherever it runs
    assert pending.routing_context.should_backoff is True
    assert asyncio.run(LessBusyOfTwo.choose_replicas(None, replicas[:1], None)) == [replicas[:1]]


def test_the_torchzoo_error_an_actor_raised_is_found_through_rays_wrappers() -> None:
    cause = UserInputError("row 3: bad image")
    wrapped = RuntimeError("RayTaskError(UserInputError)")
    wrapped.cause = RuntimeError("the actor died")  # Ray's own attribute
    wrapped.cause.__cause__ = cause
    assert batch_ray._torchzoo_cause(wrapped) is cause
    loop = RuntimeError("a cycle")
    loop.__context__ = loop
    assert batch_ray._torchzoo_cause(loop) is None


class _Batches:
    """What ``_write`` reads from a Ray dataset: ``iter_batches`` of numpy columns."""

    def __init__(self, batches: list[dict[str, np.ndarray]]) -> None:
        self.batches = batches

    def iter_batches(self, batch_size: None, batch_format: str) -> list[dict[str, np.ndarray]]:
        assert batch_size is None and batch_format == "numpy"
        return self.batches


def _columns(seqs: list[int], actor: str, began: float, ended: float) -> dict[str, np.ndarray]:
    rows = [json.dumps({"seq": s, **({"error": "bad"} if s % 2 else {"label": "x"})}) for s in seqs]
    return {
        "seq": np.asarray(seqs, dtype=np.int64),
        "row": np.asarray(rows, dtype=object),
        "failed": np.asarray([bool(s % 2) for s in seqs]),
        "actor": np.asarray([actor] * len(seqs), dtype=object),
        "began": np.full(len(seqs), began),
        "ended": np.full(len(seqs), ended),
    }


def test_the_driver_writes_rows_in_input_order_and_counts_actors_and_failures(tmp_path: Path) -> None:
    output = tmp_path / "rows.jsonl"
    progress: list[tuple[int, int]] = []
    dataset = _Batches([_columns([0, 1, 2], "a:1", 10.0, 11.0), _columns([3, 4], "b:2", 10.5, 12.5)])
    summary = batch_ray._write(dataset, AtomicJsonl(output), lambda rows, failed: progress.append((rows, failed)))
    assert [json.loads(line)["seq"] for line in output.read_text().splitlines()] == [0, 1, 2, 3, 4]
    assert (summary.rows, summary.failed, len(summary.errors)) == (5, 2, 2)
    assert summary.actors == {"a:1": 3, "b:2": 2} and summary.compute_seconds == pytest.approx(2.5)
    assert progress == [(3, 1), (5, 2)]


def test_rows_out_of_order_fail_the_job_and_write_nothing(tmp_path: Path) -> None:
    output = tmp_path / "rows.jsonl"
    dataset = _Batches([_columns([0, 2], "a:1", 0.0, 1.0), _columns([1], "a:1", 1.0, 2.0)])
    with pytest.raises(TorchzooError, match="out of input order"):
        batch_ray._write(dataset, AtomicJsonl(output), None)
    assert list(tmp_path.iterdir()) == []
