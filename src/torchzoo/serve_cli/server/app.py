"""The ASGI app: Open Inference Protocol v2 REST endpoints, KServe v1 ``:predict`` for raw inputs,
``/metrics``, an optional bearer token, a request body limit and a structured access log."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from torchzoo import __version__
from torchzoo.core.errors import TorchzooError, UserInputError
from torchzoo.core.image_codec import decode_image
from torchzoo.core.limits import MAX_IMAGE_BYTES
from torchzoo.serve_cli.output_check import check_output
from torchzoo.serve_cli.predictor import Predictor
from torchzoo.serve_cli.server.accesslog import AccessLog
from torchzoo.serve_cli.server.batching import Batcher
from torchzoo.serve_cli.server.protocol import (
    HEADER_LENGTH,
    ProtocolError,
    TensorSpec,
    decode_request,
    encode_response,
    split_body,
)

VERSION = "1"
PLATFORM = "onnxruntime_onnx"
#: endpoints answered without the bearer token (orchestrators probe them)
OPEN_PATHS = ("/v2/health/live", "/v2/health/ready")
DRAIN_FACTOR = 4


@dataclass
class ServeConfig:
    max_batch: int = 64
    max_delay_ms: float = 2.0
    max_body_bytes: int = 8 * 1024 * 1024
    token: str | None = None
    static_dir: Path | None = None


@dataclass
class ServedModel:
    predictor: Predictor
    batcher: Batcher
    inputs: list[TensorSpec] = field(default_factory=list)
    outputs: list[TensorSpec] = field(default_factory=list)

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.outputs]


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


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status)


class BodyTooLarge(Exception):
    pass


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) past ``limit`` bytes. Up to ``DRAIN_FACTOR`` times the limit the rest
    is read and dropped, so that a client still sending sees the 413 rather than a reset connection;
    a body declared larger than that is refused before any of it is read."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > DRAIN_FACTOR * limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > DRAIN_FACTOR * limit:
            raise BodyTooLarge
        if size <= limit:
            chunks.append(chunk)
    if size > limit:
        raise BodyTooLarge
    return b"".join(chunks)


def create_app(models: dict[str, Predictor], config: ServeConfig) -> Starlette:
    metrics = Metrics()
    access = AccessLog()
    state: dict[str, Any] = {"ready": False, "in_flight": 0}
    served: dict[str, ServedModel] = {}
    for name, predictor in models.items():
        batcher = Batcher(
            _checked_run(predictor, name),
            config.max_batch,
            config.max_delay_ms / 1000,
            on_batch=metrics.batch.labels(name).observe,
            on_queue=metrics.queue.labels(name).set,
        )
        served[name] = ServedModel(
            predictor,
            batcher,
            [TensorSpec.from_manifest(s) for s in predictor.manifest["inputs"]],
            [TensorSpec.from_manifest(s) for s in predictor.manifest["outputs"]],
        )

    def model_or_404(name: str) -> ServedModel:
        if name not in served:
            raise ProtocolError(f"unknown model '{name}'; served: {', '.join(served)}", 404)
        return served[name]

    async def live(request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(request: Request) -> Response:
        return JSONResponse({"ready": state["ready"]}, status_code=200 if state["ready"] else 503)

    async def server_metadata(request: Request) -> Response:
        return JSONResponse({"name": "torchzoo", "version": __version__, "extensions": ["binary_tensor_data"]})

    def model_version_or_404(request: Request) -> ServedModel:
        name = request.path_params["model"]
        model = model_or_404(name)
        if request.path_params.get("version", VERSION) != VERSION:
            raise ProtocolError(f"model '{name}' has version {VERSION} only", 404)
        return model

    async def model_metadata(request: Request) -> Response:
        model = model_version_or_404(request)
        return JSONResponse(
            {
                "name": request.path_params["model"],
                "versions": [VERSION],
                "platform": PLATFORM,
                "inputs": [t.metadata() for t in model.inputs],
                "outputs": [t.metadata() for t in model.outputs],
            }
        )

    async def model_ready(request: Request) -> Response:
        model_version_or_404(request)
        return JSONResponse({"name": request.path_params["model"], "ready": state["ready"]})

    async def infer(request: Request) -> Response:
        name = request.path_params["model"]
        model = model_version_or_404(request)
        with model.batcher.arriving():
            body = await read_body(request, config.max_body_bytes)
            header, binary = split_body(body, request.headers.get(HEADER_LENGTH))
            parsed = decode_request(header, binary, model.inputs, model.output_names)
        outputs = await model.batcher.run(parsed.arrays)
        content, headers = encode_response(name, VERSION, parsed, model.output_names, outputs)
        return Response(content, headers=headers)

    async def predict_v1(request: Request) -> Response:
        name = request.path_params["model"]
        model = model_or_404(name)
        body = await read_body(request, config.max_body_bytes)
        header, _ = split_body(body, None)
        instances = header.get("instances")
        if not isinstance(instances, list) or not instances:
            raise ProtocolError("'instances' must be a non-empty list")
        inputs = [_instance(item, i, model.predictor) for i, item in enumerate(instances)]
        parameters = header.get("parameters") or {}
        top_k = parameters.get("top_k", 3) if isinstance(parameters, dict) else 3
        threshold = parameters.get("threshold", 0.5) if isinstance(parameters, dict) else 0.5
        if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
            raise ProtocolError("'parameters.top_k' must be a positive integer")
        if not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
            raise ProtocolError("'parameters.threshold' must be a number in [0, 1]")
        predictions = await asyncio.to_thread(model.predictor.predict, inputs, top_k, float(threshold))
        return Response(json.dumps({"predictions": predictions}, allow_nan=False), media_type="application/json")

    async def prometheus(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    routes = [  # the busiest first: a request is matched against them in order
        Route("/v2/models/{model}/infer", infer, methods=["POST"]),
        Route("/v2/health/live", live),
        Route("/v2/health/ready", ready),
        Route("/v2", server_metadata),
        Route("/v2/models/{model}", model_metadata),
        Route("/v2/models/{model}/ready", model_ready),
        Route("/v2/models/{model}/versions/{version}", model_metadata),
        Route("/v2/models/{model}/versions/{version}/ready", model_ready),
        Route("/v2/models/{model}/versions/{version}/infer", infer, methods=["POST"]),
        Route("/v1/models/{model}:predict", predict_v1, methods=["POST"]),
        Route("/metrics", prometheus),
    ]
    if config.static_dir is not None:
        routes.append(Mount("/static", StaticFiles(directory=str(config.static_dir), html=True)))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        for model in served.values():
            model.batcher.start()
        access.start()
        state["ready"] = True
        yield
        state["ready"] = False
        for model in served.values():
            await model.batcher.stop()
        access.stop()

    async def protocol_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, ProtocolError):
            return _error(str(exc), exc.status)
        if isinstance(exc, HTTPException):  # no such route, or a method the route does not take
            response = _error(exc.detail, exc.status_code)
            response.headers.update(exc.headers or {})
            return response
        if isinstance(exc, BodyTooLarge):
            return _error(f"request body over {config.max_body_bytes:,} bytes", 413)
        if isinstance(exc, UserInputError):  # the runtime's refusals of bad input, as for the CLI
            return _error(str(exc), 400)
        return _error(str(exc) if isinstance(exc, TorchzooError) else "internal error", 500)

    kinds = (HTTPException, ProtocolError, BodyTooLarge, TorchzooError, Exception)
    handlers = {kind: protocol_error for kind in kinds}
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)
    app.state.served = served
    return Guard(app, config, metrics, access, state, set(served))


def _checked_run(predictor: Predictor, name: str) -> Callable[[Sequence[np.ndarray]], list[np.ndarray]]:
    """``predictor.run`` whose first output is checked to be an answer (shape, finite, probabilities in
    [0, 1]) once per batch, in the batch's worker thread; a failed check fails every request of the batch."""

    def run(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        outputs = predictor.run(arrays)
        check_output(outputs[0], int(arrays[0].shape[0]), predictor.manifest, name)
        return outputs

    return run


def _instance(item: Any, index: int, predictor: Predictor) -> Any:
    """One v1 instance as the runtime's predict takes it: names as strings, feature rows as lists, images
    as base64 PNG/JPEG (a string, or ``{"b64": ...}`` as KServe writes binary data) decoded to pixels."""
    kind = predictor.manifest["preprocessing"]["kind"]
    if kind != "image":
        if isinstance(item, dict):
            raise ProtocolError(
                f"instances[{index}]: this model takes {'names' if kind == 'names_one_hot' else 'rows'}"
            )
        return item
    encoded = item.get("b64") if isinstance(item, dict) else item
    if not isinstance(encoded, str):
        raise ProtocolError(f"instances[{index}]: an image must be base64 PNG/JPEG (a string or {{'b64': ...}})")
    if len(encoded) > MAX_IMAGE_BYTES * 4 // 3 + 4:
        raise ProtocolError(f"instances[{index}]: the image is larger than {MAX_IMAGE_BYTES:,} bytes", 413)
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(f"instances[{index}]: not valid base64") from None
    pixels = decode_image(data, predictor.manifest["preprocessing"], f"instances[{index}]")
    return pixels[None]


class Guard:
    """ASGI middleware around the app: the bearer token, metrics and the access log (one JSON line per
    request). Errors become the protocol's ``{"error": ...}`` in the app's exception handlers."""

    def __init__(
        self,
        app: Starlette,
        config: ServeConfig,
        metrics: Metrics,
        access: AccessLog,
        state: dict[str, Any],
        models: set[str],
    ) -> None:
        self.app, self.config, self.metrics, self.access = app, config, metrics, access
        self.state, self.models = state, models
        self.token = None if config.token is None else f"Bearer {config.token}".encode()

    async def __call__(self, scope: dict, receive: Callable, send: Callable[[dict], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        path = scope["path"]
        status = {"code": 500}

        async def send_status(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        if self.token is not None and path not in OPEN_PATHS:
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.token):
                await _error("missing or wrong bearer token", 401)(scope, receive, send_status)
                self._record(scope, path, status["code"], start)
                return
        self.state["in_flight"] += 1
        try:
            await self.app(scope, receive, send_status)
        finally:
            self.state["in_flight"] -= 1
            self._record(scope, path, status["code"], start)

    def _record(self, scope: dict, path: str, status: int, start: float) -> None:
        seconds = time.perf_counter() - start
        model, endpoint = _labels(path, self.models)
        self.metrics.requests.labels(model, endpoint, str(status)).inc()
        if model:
            self.metrics.latency.labels(model, endpoint).observe(seconds)
        self.access.add(
            {
                "time": round(time.time(), 3),
                "method": scope["method"],
                "path": path,
                "status": status,
                "ms": round(seconds * 1000, 3),
                "model": model or None,
                "client": (scope.get("client") or ["", 0])[0],
            }
        )


def _labels(path: str, models: set[str]) -> tuple[str, str]:
    """The metrics labels of a request: the served model it names (else ""), and which endpoint, from a
    fixed set, so that a client naming random paths or models cannot grow the label sets."""
    parts = path.split("/")
    named = parts[3].split(":")[0] if len(parts) > 3 and parts[2] == "models" else ""
    model = named if named in models else ""
    if path.endswith("/infer"):
        return model, "infer"
    if path.endswith(":predict"):
        return model, "predict"
    if named:
        return model, "ready" if path.endswith("/ready") else "metadata"
    known = {"/v2/health/live": "live", "/v2/health/ready": "ready", "/v2": "server", "/metrics": "metrics"}
    return "", known.get(path, "static" if path.startswith("/static/") else "other")
