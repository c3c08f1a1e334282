"""The endpoints, one small method each: Open Inference Protocol v2 REST (:class:`V2Endpoints`) and KServe v1
``:predict`` for raw inputs (:class:`V1Endpoints`). Errors are raised, and answered by the handlers of
:mod:`torchzoo.serve_cli.server.errors`."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from torchzoo import __version__
from torchzoo.core.tensor_spec import TensorSpec
from torchzoo.serve_cli.predictor import Predictor
from torchzoo.serve_cli.server import v1
from torchzoo.serve_cli.server.batching import Batcher
from torchzoo.serve_cli.server.body import read_body
from torchzoo.serve_cli.server.metrics import Metrics
from torchzoo.serve_cli.server.protocol import (
    HEADER_LENGTH,
    ProtocolError,
    decode_request,
    encode_response,
    split_body,
)
from torchzoo.serve_cli.server.stats import ModelStats

VERSION = "1"
PLATFORM = "onnxruntime_onnx"
#: the protocol extensions this server speaks
EXTENSIONS = ["binary_tensor_data", "statistics"]


@dataclass
class ServedModel:
    predictor: Predictor
    batcher: Batcher
    inputs: list[TensorSpec] = field(default_factory=list)
    outputs: list[TensorSpec] = field(default_factory=list)
    stats: ModelStats = field(default_factory=ModelStats)

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.outputs]


@dataclass
class ServerState:
    ready: bool = False


class V2Endpoints:
    def __init__(self, served: dict[str, ServedModel], state: ServerState, max_body_bytes: int) -> None:
        self.served, self.state, self.max_body_bytes = served, state, max_body_bytes

    def model(self, request: Request) -> ServedModel:
        """The model a path names (and its version, when it names one), or 404."""
        name = request.path_params["model"]
        if name not in self.served:
            raise ProtocolError(f"unknown model '{name}'; served: {', '.join(self.served)}", 404)
        if request.path_params.get("version", VERSION) != VERSION:
            raise ProtocolError(f"model '{name}' has version {VERSION} only", 404)
        return self.served[name]

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
                "versions": [VERSION],
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
                name = request.path_params["model"]
                content, headers = encode_response(name, VERSION, parsed, model.output_names, outputs)
        return Response(content, headers=headers)

    async def model_stats(self, request: Request) -> Response:
        model = self.model(request)
        return JSONResponse({"model_stats": [model.stats.to_json(request.path_params["model"], VERSION)]})

    async def all_stats(self, request: Request) -> Response:
        return JSONResponse({"model_stats": [m.stats.to_json(name, VERSION) for name, m in self.served.items()]})


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
