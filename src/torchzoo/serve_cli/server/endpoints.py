"""The endpoints, one small method each: Open Inference Protocol v2 REST (:class:`V2Endpoints`) and KServe v1
``:predict`` for raw inputs (:class:`V1Endpoints`). Errors are raised, and answered by the handlers of
:mod:`torchzoo.serve_cli.server.errors`."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from torchzoo import __version__
from torchzoo.serve_cli.server import v1
from torchzoo.serve_cli.server.body import read_body
from torchzoo.serve_cli.server.metrics import Metrics
from torchzoo.serve_cli.server.protocol import (
    HEADER_LENGTH,
    decode_request,
    encode_response,
    split_body,
)
from torchzoo.serve_cli.server.repository import ModelRepository, ServedModel

PLATFORM = "onnxruntime_onnx"
#: the protocol extensions this server speaks
EXTENSIONS = ["binary_tensor_data", "statistics", "model_repository"]


@dataclass
class ServerState:
    ready: bool = False


class V2Endpoints:
    def __init__(self, repository: ModelRepository, state: ServerState, max_body_bytes: int) -> None:
        self.repository, self.state, self.max_body_bytes = repository, state, max_body_bytes

    def model(self, request: Request) -> ServedModel:
        """The model a path names, at the version it names (else the latest), or 404."""
        return self.repository.find(request.path_params["model"], request.path_params.get("version"))

    def version(self, request: Request) -> str:
        return request.path_params.get("version") or self.repository.models[request.path_params["model"]].latest

    async def live(self, request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(self, request: Request) -> Response:
        return JSONResponse({"ready": self.state.ready}, status_code=200 if self.state.ready else 503)

    async def server_metadata(self, request: Request) -> Response:
        return JSONResponse({"name": "torchzoo", "version": __version__, "extensions": EXTENSIONS})

    async def model_metadata(self, request: Request) -> Response:
        model = self.model(request)
        return JSONResponse(
            {
                "name": request.path_params["model"],
                "versions": self.repository.versions(request.path_params["model"]),
                "platform": PLATFORM,
                "inputs": [t.metadata() for t in model.inputs],
                "outputs": [t.metadata() for t in model.outputs],
            }
        )

    async def model_ready(self, request: Request) -> Response:
        self.model(request)
        return JSONResponse({"name": request.path_params["model"], "ready": self.state.ready})

    async def infer(self, request: Request) -> Response:
        model = self.model(request)
        stats = model.stats
        with stats.request():
            with model.batcher.arriving():
                body = await read_body(request, self.max_body_bytes)
                with stats.timing(stats.compute_input):
                    header, binary = split_body(body, request.headers.get(HEADER_LENGTH))
                    parsed = decode_request(header, binary, model.inputs, model.output_names)
            outputs = await model.batcher.run(parsed.arrays)
            with stats.timing(stats.compute_output):
                name, version = request.path_params["model"], self.version(request)
                content, headers = encode_response(name, version, parsed, model.output_names, outputs)
        return Response(content, headers=headers)

    async def model_stats(self, request: Request) -> Response:
        name, version = request.path_params["model"], request.path_params.get("version")
        self.model(request)
        versions = [version] if version else self.repository.versions(name)
        stats = [self.repository.find(name, v).stats.to_json(name, v) for v in versions]
        return JSONResponse({"model_stats": stats})

    async def all_stats(self, request: Request) -> Response:
        stats = [m.stats.to_json(name, v) for name, v, m in self.repository.served_versions()]
        return JSONResponse({"model_stats": stats})


class RepositoryEndpoints:
    """The model repository extension: the index, and load/unload (with ``--model-control explicit``)."""

    def __init__(self, repository: ModelRepository) -> None:
        self.repository = repository

    async def index(self, request: Request) -> Response:
        return JSONResponse(self.repository.index())

    async def load(self, request: Request) -> Response:
        await self.repository.load(request.path_params["model"])
        return JSONResponse({})

    async def unload(self, request: Request) -> Response:
        await self.repository.unload(request.path_params["model"])
        return JSONResponse({})


class V1Endpoints:
    def __init__(self, v2: V2Endpoints) -> None:
        self.v2 = v2
        self.decode_slots = asyncio.Semaphore(v1.DECODE_SLOTS)

    async def predict(self, request: Request) -> Response:
        predictor = self.v2.model(request).predictor
        header, _ = split_body(await read_body(request, self.v2.max_body_bytes), None)
        instances = v1.instances_of(header)
        top_k, threshold = v1.options(header.get("parameters"))
        async with self.decode_slots:  # image decoding: off the event loop, a bounded number at once
            inputs = await asyncio.to_thread(v1.model_inputs, instances, predictor)
        predictions = await asyncio.to_thread(predictor.predict, inputs, top_k, threshold)
        return Response(json.dumps({"predictions": predictions}, allow_nan=False), media_type="application/json")


class MetricsEndpoints:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def prometheus(self, request: Request) -> Response:
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)
