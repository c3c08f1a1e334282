"""The ASGI app of ``torchzoo serve``: the endpoints' routes, the error handlers, and the middleware (bearer
token, metrics, access log), around one batcher per served model."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from torchzoo.core.tensor_spec import TensorSpec
from torchzoo.serve_cli.output_check import check_output
from torchzoo.serve_cli.predictor import Predictor
from torchzoo.serve_cli.server.accesslog import AccessLog
from torchzoo.serve_cli.server.batching import Batcher
from torchzoo.serve_cli.server.endpoints import (
    MetricsEndpoints,
    ServedModel,
    ServerState,
    V1Endpoints,
    V2Endpoints,
)
from torchzoo.serve_cli.server.errors import HANDLERS
from torchzoo.serve_cli.server.metrics import Metrics
from torchzoo.serve_cli.server.middleware import ASGIApp, Guard
from torchzoo.serve_cli.server.protocol import HEADER_LENGTH
from torchzoo.serve_cli.server.stats import ModelStats

GRPC_GRACE_SECONDS = 30


@dataclass
class ServeConfig:
    max_batch: int = 64
    max_delay_ms: float = 2.0
    max_body_bytes: int = 8 * 1024 * 1024
    token: str | None = None
    static_dir: Path | None = None
    grpc_address: str | None = None  # host:port of the gRPC service beside REST (None: REST only)
    cors_origins: tuple[str, ...] = ()  # origins a browser app may call from (none: CORS off)


def create_app(models: dict[str, Predictor], config: ServeConfig) -> ASGIApp:
    metrics, access, state = Metrics(), AccessLog(), ServerState()
    served = {name: _served(name, predictor, config, metrics) for name, predictor in models.items()}
    v2 = V2Endpoints(served, state, config.max_body_bytes)
    v1 = V1Endpoints(v2)
    routes = [  # the busiest first: a request is matched against them in order
        Route("/v2/models/{model}/infer", v2.infer, methods=["POST"]),
        Route("/v2/health/live", v2.live),
        Route("/v2/health/ready", v2.ready),
        Route("/v2", v2.server_metadata),
        Route("/v2/models/stats", v2.all_stats),  # before {model}: "stats" is no model name
        Route("/v2/models/{model}", v2.model_metadata),
        Route("/v2/models/{model}/ready", v2.model_ready),
        Route("/v2/models/{model}/versions/{version}", v2.model_metadata),
        Route("/v2/models/{model}/versions/{version}/ready", v2.model_ready),
        Route("/v2/models/{model}/versions/{version}/infer", v2.infer, methods=["POST"]),
        Route("/v2/models/{model}/stats", v2.model_stats),
        Route("/v2/models/{model}/versions/{version}/stats", v2.model_stats),
        Route("/v1/models/{model}:predict", v1.predict, methods=["POST"]),
        Route("/metrics", MetricsEndpoints(metrics).prometheus),
    ]
    if config.static_dir is not None:
        routes.append(Mount("/static", StaticFiles(directory=str(config.static_dir), html=True)))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        for model in served.values():
            model.batcher.start()
        access.start()
        grpc_server = None
        if config.grpc_address is not None:  # imported only then: the gRPC stack is the serve extra's
            from torchzoo.serve_cli.server.grpc_service import start_grpc

            grpc_server = await start_grpc(
                config.grpc_address, served, state, config.token, metrics, config.max_body_bytes
            )
        state.ready = True
        yield
        state.ready = False
        if grpc_server is not None:  # RPCs in flight finish first, as REST's requests do
            await grpc_server.stop(GRPC_GRACE_SECONDS)
        for model in served.values():
            await model.batcher.stop()
        access.stop()

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=HANDLERS)
    guarded = Guard(app, config.token, metrics, access, set(served))
    if not config.cors_origins:
        return guarded
    # outermost: a browser's preflight (OPTIONS, never with the token) is answered before the token check
    return CORSMiddleware(
        guarded,
        allow_origins=list(config.cors_origins),
        allow_methods=["GET", "POST"],
        allow_headers=["authorization", "content-type", "content-encoding", HEADER_LENGTH],
        expose_headers=[HEADER_LENGTH],
    )


def _served(name: str, predictor: Predictor, config: ServeConfig, metrics: Metrics) -> ServedModel:
    stats = ModelStats()
    batcher = Batcher(
        _checked_run(predictor, name),
        config.max_batch,
        config.max_delay_ms / 1000,
        on_batch=metrics.batch.labels(name).observe,
        on_queue=metrics.queue.labels(name).set,
        on_run=stats.ran,
        on_wait=stats.queue.add,
    )
    inputs = [TensorSpec.from_json(s) for s in predictor.manifest["inputs"]]
    outputs = [TensorSpec.from_json(s) for s in predictor.manifest["outputs"]]
    return ServedModel(predictor, batcher, inputs, outputs, stats)


def _checked_run(predictor: Predictor, name: str) -> Callable[[Sequence[np.ndarray]], list[np.ndarray]]:
    """``predictor.run`` whose first output is checked to be an answer (shape, finite, probabilities in
    [0, 1]), in the batch's worker thread; the batcher keeps one request's failure from failing the others."""

    def run(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        outputs = predictor.run(arrays)
        check_output(outputs[0], int(arrays[0].shape[0]), predictor.manifest, name)
        return outputs

    return run
