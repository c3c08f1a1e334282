"""The runtimes onnxruntime is compared with beyond eager and TorchScript, and its own int8/fp16 variants.

- ``torch_compile``: ``torch.compile(model)`` (inductor, default mode); its first call compiles, and
  :func:`torchzoo.bench.measure.bench_model` reports that first call separately (``first_call_s``); every
  measured call comes after the warm-up round (which also compiles the large-batch shape).
- ``openvino_cpu``: the ``openvino`` package reading ``model.onnx``, CPU plugin, float32 inference precision
  (when it is installed: the ``bench`` extra); a graph it cannot compile is listed under ``skipped``.
- ``onnxruntime_cpu_int8`` / ``onnxruntime_cpu_fp16``: the published variants (``manifest.variants``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from torchzoo.bench.models import Benched, eager_module
from torchzoo.core import artifact
from torchzoo.core.session import create_session

Batch = tuple[np.ndarray, ...]
Loader = Callable[[], Callable[[Batch], Any]]
#: the peers a model's default onnxruntime graph is compared with at batch 1 (when they ran)
PEERS = ("torch_eager", "torchscript", "torch_compile", "openvino_cpu")


def peer_loaders(spec: Benched, root: Path, input_names: list[str], manifest: dict[str, Any]) -> dict[str, Loader]:
    directory = root / spec.name

    def compiled() -> Callable[[Batch], Any]:
        model = eager_module(spec, root)
        function = torch.compile(model)
        return lambda xs: function(*(torch.from_numpy(x) for x in xs))

    def openvino() -> Callable[[Batch], Any]:
        import openvino as ov

        # float32 like the graph it is compared with: on CPUs with bf16 units OpenVINO's CPU plugin otherwise
        # computes in bfloat16 by default (its INFERENCE_PRECISION_HINT), a different and less exact model
        config = {"INFERENCE_PRECISION_HINT": "f32"}
        request = ov.Core().compile_model(str(directory / artifact.ONNX), "CPU", config).create_infer_request()
        return lambda xs: request.infer(list(xs))

    def variant(filename: str) -> Loader:
        def load() -> Callable[[Batch], Any]:
            session = create_session(directory / filename, "cpu").session
            return lambda xs: session.run(None, dict(zip(input_names, xs, strict=True)))

        return load

    found: dict[str, Loader] = {"torch_compile": compiled}
    if importlib.util.find_spec("openvino") is not None:
        found["openvino_cpu"] = openvino
    published = (manifest.get("variants") or {}).get("published") or {}
    for name in ("int8", "fp16"):
        if name in published:
            found[f"onnxruntime_cpu_{name}"] = variant(artifact.FORMAT_FILES[artifact.VARIANT_FORMATS[name]])
    return found


def best_peer(latency: dict[str, list[float]], calls: int, ratio: Callable[..., float]) -> dict[str, Any]:
    """onnxruntime (fp32) against the fastest peer at batch 1: peer time / onnxruntime time (> 1: ORT wins)."""
    ratios = {peer: ratio(latency, peer, "onnxruntime_cpu", calls) for peer in PEERS if peer in latency}
    best = min(ratios, key=ratios.__getitem__)
    return {"best_peer": best, "onnxruntime_vs_best_peer_b1": ratios[best], "onnxruntime_vs_peers_b1": ratios}
