"""The reduced-precision ONNX variants, made from the float32 ``model.onnx``: int8 and fp16.

- int8: ``onnxruntime.quantization``. ``quant_pre_process`` runs first (the dynamo exporter's graphs carry
  value_info entries for weights that ``quantize_dynamic``'s shape inference refuses). Graphs without
  convolutions (MLP, RNN/GRU/LSTM, the names Scan) get dynamic quantization: int8 weights, activations
  quantized per batch at run time, subgraphs included (``EnableSubgraph``: the names model's ``Scan`` body).
  Graphs with convolutions (the CNNs) get static QDQ quantization, calibrated (MinMax) on real training
  images; weights per channel; the output layer stays float32.
- fp16: ``onnxconverter_common.float16.convert_float_to_float16(keep_io_types=True)``: weights and
  arithmetic in float16, inputs and outputs still float32, so callers feed and read the same arrays.

Neither is equivalent to float32 to 1e-5; :mod:`torchzoo.export.variants` checks them by task accuracy.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

#: training samples the static (QDQ) quantizer calibrates on
CALIBRATION_SAMPLES = 512
CALIBRATION_BATCH = 64


def _domains(graph: Any) -> set[str]:
    """Every operator domain the nodes of ``graph`` and its subgraphs use."""
    found = set()
    for node in graph.node:
        found.add(node.domain)
        for attribute in node.attribute:
            for sub in [attribute.g, *attribute.graphs] if attribute.HasField("g") or attribute.graphs else []:
                found |= _domains(sub)
    return found


def _prune_opsets(path: Path) -> None:
    """Keep only the opset imports the graph uses: ``quant_pre_process`` saves onnxruntime's optimized graph,
    which imports every domain onnxruntime knows (training, preview, aten...), and the runtime refuses
    domains it does not know."""
    import onnx

    model = onnx.load(str(path))
    used = _domains(model.graph) | {""}
    keep = [o for o in model.opset_import if o.domain in used]
    del model.opset_import[:]
    model.opset_import.extend(keep)
    onnx.save_model(model, str(path))


def _has_conv(path: Path) -> bool:
    import onnx

    return any(node.op_type == "Conv" for node in onnx.load(str(path)).graph.node)


def _output_layer(path: Path) -> list[str]:
    """The name of the last Gemm/MatMul node (the output layer; nodes are in topological order)."""
    import onnx

    layers = [node.name for node in onnx.load(str(path)).graph.node if node.op_type in ("Gemm", "MatMul")]
    return layers[-1:]


class _Batches:
    """``onnxruntime.quantization.CalibrationDataReader``: the calibration inputs in batches."""

    def __init__(self, names: list[str], inputs: tuple[np.ndarray, ...]) -> None:
        count = len(inputs[0])
        self._batches: Iterator[dict[str, np.ndarray]] = iter(
            [
                {
                    name: np.ascontiguousarray(a[start : start + CALIBRATION_BATCH])
                    for name, a in zip(names, inputs, strict=True)
                }
                for start in range(0, count, CALIBRATION_BATCH)
            ]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def quantize_int8(
    source: Path, target: Path, input_names: list[str], calibration: tuple[np.ndarray, ...] | None
) -> dict[str, Any]:
    """Write the int8 graph of ``source`` to ``target``; returns how it was made. Static quantization needs
    ``calibration`` (model-ready training inputs); without it a CNN cannot be quantized (ValueError)."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared))
        if not _has_conv(prepared):
            quantize_dynamic(
                str(prepared), str(target), weight_type=QuantType.QInt8, extra_options={"EnableSubgraph": True}
            )
            _prune_opsets(target)
            return {
                "how": "onnxruntime.quantization: quant_pre_process, then quantize_dynamic (int8 weights, "
                "activations quantized per call, subgraphs included)",
                "method": "dynamic",
            }
        if calibration is None:
            raise ValueError("a convolutional graph needs calibration data for static quantization")
        picked = tuple(a[:CALIBRATION_SAMPLES] for a in calibration)
        reader = _Batches(input_names, picked)
        kept_float = _output_layer(prepared)
        quantize_static(
            str(prepared),
            str(target),
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=kept_float,
        )
        _prune_opsets(target)
    return {
        "how": "onnxruntime.quantization: quant_pre_process, then quantize_static (QDQ, uint8 activations, int8 "
        "weights per channel, MinMax calibration)",
        "method": "static",
        "calibration": f"{len(picked[0])} training samples, batches of {CALIBRATION_BATCH}",
        "float32_nodes": kept_float,
        "float32_reason": (
            "the output layer (logits) stays float32, as usual in static quantization: quantizing it too cost "
            "1.4 points of top-1 agreement on the quick-profile cifar10-cnn (97.7%, below the 99% threshold)"
        ),
    }


def convert_fp16(source: Path, target: Path) -> dict[str, Any]:
    """Write the float16 graph of ``source`` to ``target`` (inputs and outputs stay float32)."""
    import onnx
    from onnxconverter_common.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    with warnings.catch_warnings():  # one "truncated to 1e-07" warning per tiny weight
        warnings.simplefilter("ignore")
        # ConstantOfShape stays float32 (a Cast follows): the converter retypes its output but not its value,
        # which onnxruntime refuses (the names model's zero initial state)
        blocked = [*DEFAULT_OP_BLOCK_LIST, "ConstantOfShape"]
        model = convert_float_to_float16(onnx.load(str(source)), keep_io_types=True, op_block_list=blocked)
    onnx.save_model(model, str(target))
    _prune_opsets(target)
    return {
        "how": "onnxconverter_common convert_float_to_float16(keep_io_types=True): float32 inputs and outputs",
        "kept_float32": "ConstantOfShape (and the converter's default block list)",
    }
