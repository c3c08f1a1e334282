"""The Open Inference Protocol over gRPC (``torchzoo serve --grpc-port PORT``): ``inference.GRPCInferenceService``
beside the REST app, in the same event loop, over the same served models, batchers, token and limits.

The service definition is Triton's ``grpc_service.proto`` as tritonclient ships it generated
(``tritonclient.grpc.service_pb2``): a superset of the Open Inference Protocol's ``open_inference_grpc.proto``
with the same package, service, method and message names and field numbers, so KServe's and Triton's gRPC
clients both speak to it. Methods this server does not implement answer UNIMPLEMENTED.

Errors are gRPC status codes with the REST answer's one line: 400 -> INVALID_ARGUMENT, 401 -> UNAUTHENTICATED,
404 -> NOT_FOUND, 413 -> RESOURCE_EXHAUSTED, a server fault -> INTERNAL. The bearer token is the metadata
``authorization: Bearer TOKEN``; ServerLive and ServerReady stay open, as REST's live and ready do.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import numpy as np
from google.protobuf import json_format
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc

from torchzoo import __version__
from torchzoo.core.errors import TorchzooError, UserInputError
from torchzoo.serve_cli.server.endpoints import PLATFORM, ServerState
from torchzoo.serve_cli.server.metrics import Metrics
from torchzoo.serve_cli.server.protocol import (
    TO_DATATYPE,
    ProtocolError,
    check_batch,
    check_header,
    check_outputs,
    checked,
    from_raw,
    from_values,
    match_inputs,
)
from torchzoo.serve_cli.server.repository import ModelRepository, ServedModel

#: the typed contents field of each datatype (when a client sends no raw contents)
CONTENTS = {
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "INT64": "int64_contents",
    "INT32": "int_contents",
    "UINT8": "uint_contents",
    "BOOL": "bool_contents",
}
CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
}
#: the request metadata (gRPC's headers) a client may send, in bytes
MAX_METADATA_BYTES = 16 * 1024
Handler = Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[Any]]


def _rpc(endpoint: str, open_: bool = False) -> Callable[[Handler], Handler]:
    """An RPC method: the token checked (unless ``open_``), errors turned into status codes, the call counted."""

    def wrap(method: Handler) -> Handler:
        async def call(self: InferenceServicer, request: Any, context: grpc.aio.ServicerContext) -> Any:
            start = time.perf_counter()
            code, message = grpc.StatusCode.OK, ""
            try:
                if not open_:
                    self.authorize(context)
                return await method(self, request, context)
            except ProtocolError as exc:
                code, message = CODES.get(exc.status, grpc.StatusCode.INVALID_ARGUMENT), str(exc)
            except UserInputError as exc:
                code, message = grpc.StatusCode.INVALID_ARGUMENT, str(exc)
            except TorchzooError as exc:
                code, message = grpc.StatusCode.INTERNAL, str(exc)
            except Exception:  # a fault of the server's own: the client learns nothing of it
                code, message = grpc.StatusCode.INTERNAL, "internal error"
                raise
            finally:
                self.record(endpoint, request, code, start)
            await context.abort(code, " ".join(message.split()))

        return call

    return wrap


class InferenceServicer(service_pb2_grpc.GRPCInferenceServiceServicer):
    def __init__(self, repository: ModelRepository, state: ServerState, token: str | None, metrics: Metrics) -> None:
        self.repository, self.state, self.metrics = repository, state, metrics
        self.token = None if token is None else f"Bearer {token}"

    def authorize(self, context: grpc.aio.ServicerContext) -> None:
        given = dict(context.invocation_metadata() or ()).get("authorization", "")
        if self.token is not None and not hmac.compare_digest(str(given).encode(), self.token.encode()):
            raise ProtocolError("missing or wrong bearer token", 401)

    def model(self, name: str, version: str) -> ServedModel:
        return self.repository.find(name, version)

    def record(self, endpoint: str, request: Any, code: grpc.StatusCode, start: float) -> None:
        name = getattr(request, "model_name", None) or getattr(request, "name", "")
        model = name if name in self.repository else ""
        self.metrics.requests.labels(model, endpoint, f"grpc_{code.name}").inc()
        if model:
            self.metrics.latency.labels(model, endpoint).observe(time.perf_counter() - start)

    @_rpc("grpc_live", open_=True)
    async def ServerLive(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return pb.ServerLiveResponse(live=True)

    @_rpc("grpc_ready", open_=True)
    async def ServerReady(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return pb.ServerReadyResponse(ready=self.state.ready)

    @_rpc("grpc_ready")
    async def ModelReady(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.model(request.name, request.version)
        return pb.ModelReadyResponse(ready=self.state.ready)

    @_rpc("grpc_server")
    async def ServerMetadata(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return pb.ServerMetadataResponse(name="torchzoo", version=__version__, extensions=[])

    @_rpc("grpc_metadata")
    async def ModelMetadata(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        model = self.model(request.name, request.version)
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=request.name,
            versions=self.repository.versions(request.name),
            platform=PLATFORM,
            inputs=[tensor(name=t.name, datatype=t.datatype, shape=t.dims) for t in model.inputs],
            outputs=[tensor(name=t.name, datatype=t.datatype, shape=t.dims) for t in model.outputs],
        )

    @_rpc("grpc_infer")
    async def ModelInfer(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        model = self.model(request.model_name, request.model_version)
        version = request.model_version or self.repository.models[request.model_name].latest
        stats = model.stats
        with stats.request():
            with model.batcher.arriving(), stats.timing(stats.compute_input):
                arrays = decode_inputs(request, model)
                wanted = requested_outputs(request, model)
            outputs = await model.batcher.run(arrays)
            with stats.timing(stats.compute_output):
                return encode_outputs(request, version, wanted, model, outputs)

    @_rpc("grpc_stats")
    async def ModelStatistics(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        if request.name:
            versions = [request.version] if request.version else self.repository.versions(request.name)
            served = [(request.name, v, self.model(request.name, v)) for v in versions]
        else:
            served = self.repository.served_versions()
        entries = [model.stats.to_json(name, version) for name, version, model in served]
        return json_format.ParseDict({"model_stats": entries}, pb.ModelStatisticsResponse())

    @_rpc("grpc_repository")
    async def RepositoryIndex(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        rows = [r for r in self.repository.index() if not request.ready or r["state"] == "READY"]
        return json_format.ParseDict({"models": rows}, pb.RepositoryIndexResponse())

    @_rpc("grpc_repository")
    async def RepositoryModelLoad(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self.repository.load(request.model_name)
        return pb.RepositoryModelLoadResponse()

    @_rpc("grpc_repository")
    async def RepositoryModelUnload(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self.repository.unload(request.model_name)
        return pb.RepositoryModelUnloadResponse()


def decode_inputs(request: Any, model: ServedModel) -> tuple[np.ndarray, ...]:
    """The request's tensors in the model's input order, from raw contents or typed contents, each checked as
    REST checks it."""
    tensors = list(request.inputs)
    by_name = match_inputs([t.name for t in tensors], list(range(len(tensors))), model.inputs)
    raw = request.raw_input_contents
    if raw and len(raw) != len(tensors):
        raise ProtocolError(f"raw_input_contents holds {len(raw)} tensors for {len(tensors)} inputs")
    arrays = []
    for spec in model.inputs:
        index = by_name[spec.name]
        tensor = tensors[index]
        shape = list(tensor.shape)
        count = check_header(spec, tensor.datatype, shape)
        if raw:
            arrays.append(from_raw(spec, raw[index], shape))
            continue
        values = from_values(list(getattr(tensor.contents, CONTENTS[spec.datatype])), spec)
        if values.size != count:
            raise ProtocolError(f"input '{spec.name}': {values.size} values; shape {shape} needs {count}")
        arrays.append(checked(spec, values.reshape(shape)))
    check_batch(arrays)
    return tuple(arrays)


def requested_outputs(request: Any, model: ServedModel) -> list[str]:
    names = [o.name for o in request.outputs] or model.output_names
    check_outputs(names, model.output_names)
    for output in request.outputs:
        if "classification" in output.parameters:
            raise ProtocolError(f"output '{output.name}': the classification extension is not supported here")
    return names


def encode_outputs(request: Any, version: str, wanted: list[str], model: ServedModel, values: list[np.ndarray]) -> Any:
    """The response, every output as raw little-endian contents (tritonclient reads them back with as_numpy)."""
    response = pb.ModelInferResponse(model_name=request.model_name, model_version=version, id=request.id)
    for name in wanted:
        array = np.ascontiguousarray(values[model.output_names.index(name)])
        datatype = TO_DATATYPE.get(array.dtype.newbyteorder("="))
        if datatype is None:
            raise TorchzooError(f"output '{name}' has dtype {array.dtype}, which this server cannot send")
        response.outputs.add(name=name, datatype=datatype, shape=list(array.shape))
        response.raw_output_contents.append(array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes())
    return response


async def start_grpc(
    address: str, repository: ModelRepository, state: ServerState, token: str | None, metrics: Metrics,
    max_message_bytes: int,
) -> grpc.aio.Server:  # fmt: skip
    """A started gRPC server on ``address`` (``host:port``), messages bounded as REST bodies are."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_metadata_size", MAX_METADATA_BYTES),
        ]
    )
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
        InferenceServicer(repository, state, token, metrics), server
    )
    server.add_insecure_port(address)
    await server.start()
    return server
