"""The ASGI app of ``torchzoo serve``: the endpoints' routes, the error handlers, and the middleware (bearer
token, metrics, access log), around one batcher per served model."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from torchzoo.serve_cli.predictor import Predictor
from torchzoo.serve_cli.server.accesslog import AccessLog
from torchzoo.serve_cli.server.endpoints import (
    MetricsEndpoints,
    RepositoryEndpoints,
    ServerState,
    V1Endpoints,
    V2Endpoints,
)
from torchzoo.serve_cli.server.errors import HANDLERS
from torchzoo.serve_cli.server.metrics import Metrics
from torchzoo.serve_cli.server.middleware import ASGIApp, Guard
from torchzoo.serve_cli.server.protocol import HEADER_LENGTH
from torchzoo.serve_cli.server.repository import BatchSettings, ModelRepository

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
    model_control: str = "none"  # "explicit": the repository extension may load and unload models


Models = dict[str, dict[str, Predictor]]  # name -> version -> predictor


def create_app(models: Models, config: ServeConfig, root: Path | None = None, provider: str = "auto") -> ASGIApp:
    """The app over ``models``; ``root`` and ``provider``: where and how the repository extension loads more."""
    metrics, access, state = Metrics(), AccessLog(), ServerState()
    batching = BatchSettings(config.max_batch, config.max_delay_ms)
    repository = ModelRepository(models, batching, metrics, root, provider, config.model_control)
    v2 = V2Endpoints(repository, state, config.max_body_bytes)
    routes = _routes(v2, V1Endpoints(v2), RepositoryEndpoints(repository), MetricsEndpoints(metrics))
    if config.static_dir is not None:
        routes.append(Mount("/static", StaticFiles(directory=str(config.static_dir), html=True)))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        repository.start()
        access.start()
        grpc_server = None
        if config.grpc_address is not None:  # imported only then: the gRPC stack is the serve extra's
            from torchzoo.serve_cli.server.grpc_service import start_grpc

            grpc_server = await start_grpc(
                config.grpc_address, repository, state, config.token, metrics, config.max_body_bytes
            )
        state.ready = True
        yield
        state.ready = False
        if grpc_server is not None:  # RPCs in flight finish first, as REST's requests do
            await grpc_server.stop(GRPC_GRACE_SECONDS)
        await repository.stop()
        access.stop()

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=HANDLERS)
    guarded = Guard(app, config.token, metrics, access, repository)
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


def _routes(
    v2: V2Endpoints, v1: V1Endpoints, control: RepositoryEndpoints, metrics: MetricsEndpoints
) -> list[Route | Mount]:
    return [  # the busiest first: a request is matched against them in order
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
        Route("/v2/repository/index", control.index, methods=["POST"]),
        Route("/v2/repository/models/{model}/load", control.load, methods=["POST"]),
        Route("/v2/repository/models/{model}/unload", control.unload, methods=["POST"]),
        Route("/v1/models/{model}:predict", v1.predict, methods=["POST"]),
        Route("/metrics", metrics.prometheus),
    ]
