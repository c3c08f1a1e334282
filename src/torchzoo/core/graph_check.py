"""The graph is self-contained: no external data, no operator domain this runtime does not know.

Checked on the graph's bytes before onnxruntime sees them (a session would read an external-data file
wherever the graph points, and load custom operators from its domains). The runtime does not depend on
the ``onnx`` package; it parses the ONNX protobuf with ``protobuf`` (which onnxruntime itself requires)
through a subset of ``onnx.proto`` declared here: only the fields walked below, with ONNX's own field
numbers. Every other field is skipped by protobuf as unknown, which is exactly what the walk needs.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from torchzoo.core.errors import ArtifactError

#: the standard ONNX domains (onnx.defs): default/ai.onnx, ai.onnx.ml, and the training domains that
#: onnxruntime's quantizer copies into opset imports (an inference build has no training op: a graph that
#: really uses one fails to load, an ArtifactError); nothing here loads code or reads a file
KNOWN_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "ai.onnx.training", "ai.onnx.preview.training"})
#: onnxruntime's built-in contrib operators (compiled into onnxruntime, nothing is loaded): the int8 variant's
#: DynamicQuantizeLSTM lives there; allowed only where a caller passes it (the int8/fp16 variants)
ONNXRUNTIME_DOMAIN = "com.microsoft"
EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL

_LABEL_OPTIONAL, _LABEL_REPEATED = 1, 3
_INT64, _INT32, _STRING, _MESSAGE = 3, 5, 9, 11
#: message -> (field, number, type, repeated, message type); numbers from onnx/onnx.proto
_SUBSET: dict[str, list[tuple[str, int, int, bool, str | None]]] = {
    "StringStringEntryProto": [("key", 1, _STRING, False, None), ("value", 2, _STRING, False, None)],
    "OperatorSetIdProto": [("domain", 1, _STRING, False, None), ("version", 2, _INT64, False, None)],
    "TensorProto": [
        ("name", 8, _STRING, False, None),
        ("external_data", 13, _MESSAGE, True, "StringStringEntryProto"),
        ("data_location", 14, _INT32, False, None),
    ],
    "SparseTensorProto": [
        ("values", 1, _MESSAGE, False, "TensorProto"),
        ("indices", 2, _MESSAGE, False, "TensorProto"),
    ],
    "AttributeProto": [
        ("name", 1, _STRING, False, None),
        ("t", 5, _MESSAGE, False, "TensorProto"),
        ("g", 6, _MESSAGE, False, "GraphProto"),
        ("tensors", 10, _MESSAGE, True, "TensorProto"),
        ("graphs", 11, _MESSAGE, True, "GraphProto"),
        ("sparse_tensor", 22, _MESSAGE, False, "SparseTensorProto"),
        ("sparse_tensors", 23, _MESSAGE, True, "SparseTensorProto"),
    ],
    "NodeProto": [
        ("op_type", 4, _STRING, False, None),
        ("attribute", 5, _MESSAGE, True, "AttributeProto"),
        ("domain", 7, _STRING, False, None),
    ],
    "GraphProto": [
        ("node", 1, _MESSAGE, True, "NodeProto"),
        ("initializer", 5, _MESSAGE, True, "TensorProto"),
        ("sparse_initializer", 15, _MESSAGE, True, "SparseTensorProto"),
    ],
    "FunctionProto": [
        ("name", 1, _STRING, False, None),
        ("node", 7, _MESSAGE, True, "NodeProto"),
        ("opset_import", 9, _MESSAGE, True, "OperatorSetIdProto"),
        ("domain", 10, _STRING, False, None),
        ("attribute_proto", 11, _MESSAGE, True, "AttributeProto"),
    ],
    "ModelProto": [
        ("ir_version", 1, _INT64, False, None),
        ("graph", 7, _MESSAGE, False, "GraphProto"),
        ("opset_import", 8, _MESSAGE, True, "OperatorSetIdProto"),
        ("functions", 25, _MESSAGE, True, "FunctionProto"),
    ],
}
_PACKAGE = "torchzoo.onnx_subset"


@cache
def _model_class() -> Any:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    file = descriptor_pb2.FileDescriptorProto(name="torchzoo_onnx_subset.proto", package=_PACKAGE, syntax="proto2")
    for message, fields in _SUBSET.items():
        proto = file.message_type.add(name=message)
        for name, number, kind, repeated, type_name in fields:
            field = proto.field.add(name=name, number=number, type=kind)
            field.label = _LABEL_REPEATED if repeated else _LABEL_OPTIONAL
            if type_name:
                field.type_name = f".{_PACKAGE}.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.ModelProto"))


def _tensors(attribute: Any) -> list[Any]:
    found = [attribute.t, *attribute.tensors]
    for sparse in [attribute.sparse_tensor, *attribute.sparse_tensors]:
        found += [sparse.values, sparse.indices]
    return found


def _check_tensor(tensor: Any, shown: str) -> None:
    if tensor.data_location == EXTERNAL or len(tensor.external_data):
        where = next((e.value for e in tensor.external_data if e.key == "location"), "?")
        raise ArtifactError(
            f"{shown}: tensor {tensor.name[:60]!r} refers to external data ({where[:60]!r}); "
            "an artifact's graph must be self-contained"
        )


def _check_nodes(nodes: Any, domains: frozenset[str], shown: str) -> None:
    for node in nodes:
        if node.domain not in domains:
            raise ArtifactError(
                f"{shown}: operator {node.op_type[:40]!r} of domain {node.domain[:60]!r} is not one this runtime "
                f"knows ({', '.join(repr(d) for d in sorted(KNOWN_DOMAINS))})"
            )
        for attribute in node.attribute:
            for tensor in _tensors(attribute):
                _check_tensor(tensor, shown)
            for graph in [attribute.g, *attribute.graphs]:
                _check_graph(graph, domains, shown)


def _check_graph(graph: Any, domains: frozenset[str], shown: str) -> None:
    for tensor in graph.initializer:
        _check_tensor(tensor, shown)
    for sparse in graph.sparse_initializer:
        _check_tensor(sparse.values, shown)
        _check_tensor(sparse.indices, shown)
    _check_nodes(graph.node, domains, shown)


def check_graph(data: bytes, shown: str, extra_domains: frozenset[str] = frozenset()) -> None:
    """Refuse a graph (its bytes) that is not ONNX protobuf, refers to external data, or uses an operator
    domain other than the standard ones, ``extra_domains`` and its own local functions'. ``shown`` names it
    in the error."""
    from google.protobuf.message import DecodeError

    model = _model_class()()
    try:
        model.ParseFromString(data)
    except (DecodeError, RecursionError, ValueError) as exc:
        raise ArtifactError(f"{shown} is not an ONNX graph (invalid protobuf: {type(exc).__name__})") from None
    if not model.HasField("graph") or model.ir_version <= 0:
        raise ArtifactError(f"{shown} is not an ONNX graph (no graph or IR version)")
    local = frozenset(f.domain for f in model.functions)
    domains = KNOWN_DOMAINS | extra_domains | local
    for opset in model.opset_import:
        if opset.domain not in domains:
            raise ArtifactError(
                f"{shown}: imports operator domain {opset.domain[:60]!r}, which this runtime does not know"
            )
    for function in model.functions:
        for attribute in function.attribute_proto:
            for tensor in _tensors(attribute):
                _check_tensor(tensor, shown)
        _check_nodes(function.node, domains, shown)
    _check_graph(model.graph, domains, shown)
