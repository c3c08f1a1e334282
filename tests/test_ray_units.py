"""The Ray paths' own logic, without a Ray cluster (tests/test_ray_serve.py, tests/test_ray_hosts.py and the
predict-batch Ray test start one, in the slow lane): serve --ray's scaling options, deployment options, node headers
and request router; predict-batch --ray's driver-side writer and error unwrapping; the shipped artifacts (packed
from the checked bytes, refused when damaged on arrival or too large for the object store)."""

from __future__ import annotations

import asyncio
import json
import random
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from test_embed_units import _toy

from torchzoo.core import artifact
from torchzoo.core.errors import ArtifactError, TorchzooError, UserInputError
from torchzoo.serve_cli import batch_ray, shipped
from torchzoo.serve_cli.batch import AtomicJsonl
from torchzoo.serve_cli.predictor import Predictor
from torchzoo.serve_cli.server import ray_deploy
from torchzoo.serve_cli.server.app import ServeConfig
from torchzoo.serve_cli.server.ray_router import LessBusyOfTwo
from torchzoo.serve_cli.server.run import load_models

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


def test_with_the_haproxy_ingress_the_deployment_has_no_router_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """Serve refuses a custom router when HAProxy balances the ingress; every other option stays."""
    scale, config = ray_deploy.scaling(2, None), ServeConfig(max_batch=16)
    monkeypatch.setenv(ray_deploy.HAPROXY_ENV, "1")
    options = ray_deploy.deployment_options(scale, config, 1.0)
    assert "request_router_config" not in options and options["num_replicas"] == 2
    monkeypatch.setenv(ray_deploy.HAPROXY_ENV, "0")
    assert ray_deploy.deployment_options(scale, config, 1.0) == {
        **options,
        "request_router_config": {"request_router_class": ray_deploy.ROUTER},
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


def test_a_shipped_artifact_is_the_checked_bytes_and_loads_from_a_directory_of_its_own(tmp_path: Path) -> None:
    directory = _toy(tmp_path / "toy")
    files = shipped.pack(directory)
    assert files == {name: (directory / name).read_bytes() for name in (artifact.MANIFEST, artifact.ONNX)}
    assert shipped.size(files) == sum(len(data) for data in files.values())
    with shipped.unpacked() as root:
        directories = ray_deploy.unpack_models(root, {"toy": {"1": files, "2": files}})
        assert directories == {"toy": root / "toy"} and (root / "toy" / "2" / artifact.ONNX).is_file()
        served, refused = load_models(directories, "cpu")
    assert not root.exists()  # the files are gone once the sessions exist
    assert refused == {} and sorted(served["toy"]) == ["1", "2"]
    rows = np.asarray([[1.0, 3.0]], np.float32)
    np.testing.assert_array_equal(served["toy"]["2"].run([rows])[0], Predictor(directory).run([rows])[0])


def test_a_damaged_artifact_is_not_packed_and_damaged_bytes_are_refused_where_they_arrive(tmp_path: Path) -> None:
    directory = _toy(tmp_path / "toy")
    files = shipped.pack(directory)
    graph = bytearray(files[artifact.ONNX])
    graph[-1] ^= 0xFF
    with shipped.unpacked() as root:
        served, refused = load_models(
            ray_deploy.unpack_models(root, {"toy": {"1": {**files, "model.onnx": graph}}}), "cpu"
        )
    assert served == {} and "sha256" in refused["toy"], refused
    (directory / artifact.ONNX).write_bytes(bytes(graph))
    with pytest.raises(ArtifactError, match="sha256"):
        shipped.pack(directory)
    with pytest.raises(ArtifactError, match="not a plain file name"):
        shipped.write(tmp_path / "out", {"../manifest.json": b"{}"})


def test_a_model_larger_than_the_smallest_object_store_is_refused_in_one_line() -> None:
    nodes = [
        {"Alive": True, "NodeManagerAddress": "10.0.0.1", "Resources": {"object_store_memory": 500 * shipped.MIB}},
        {"Alive": True, "NodeManagerAddress": "10.0.0.2", "Resources": {"object_store_memory": 80 * shipped.MIB}},
        {"Alive": False, "NodeManagerAddress": "10.0.0.3", "Resources": {"object_store_memory": 1 * shipped.MIB}},
    ]
    limit = shipped.store_limit(nodes)
    assert limit == shipped.StoreLimit(80 * shipped.MIB, "10.0.0.2")  # the smallest alive node
    limit.check("mnist-mlp", 80 * shipped.MIB)  # fits
    with pytest.raises(UserInputError) as refused:
        limit.check("big", 80 * shipped.MIB + 1)
    message = str(refused.value)
    assert message.startswith("big: 80.0 MiB of artifact files") and "80.0 MiB, node 10.0.0.2" in message
    assert "--object-store-memory" in message and "\n" not in message
    assert shipped.store_limit([]) is None


class _Failing:
    def iter_batches(self, batch_size: None, batch_format: str) -> list:
        raise RuntimeError("ActorDiedError: the actor died unexpectedly\nmore lines")


class _Cluster:
    """What ``_run`` asks of ``ray``: the alive nodes before the job, then after it failed."""

    def __init__(self, before: list[str], after: list[str]) -> None:
        self.answers = [before, after]

    def nodes(self) -> list[dict]:
        return [{"NodeManagerAddress": a, "Alive": True} for a in self.answers.pop(0)]


def test_a_job_that_fails_after_losing_a_node_is_one_line_naming_it_and_writes_nothing(tmp_path: Path) -> None:
    output = tmp_path / "rows.jsonl"
    lost = _Cluster(["10.0.0.1", "10.0.0.2"], ["10.0.0.1"])
    with pytest.raises(TorchzooError) as failed:
        batch_ray._run(lost, _Failing(), AtomicJsonl(output), None)
    assert str(failed.value) == (
        "the Ray Data job failed after losing node(s) 10.0.0.2 (RuntimeError: ActorDiedError: the actor died "
        "unexpectedly); no output was written"
    )
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError, match="ActorDiedError"):  # no node lost: Ray's own error, as it was
        batch_ray._run(_Cluster(["10.0.0.1"], ["10.0.0.1"]), _Failing(), AtomicJsonl(output), None)
