"""Test-only stand-in for Triton's C++ onnxruntime backend, as a Python-based backend named ``onnxruntime``.

tritonserver maps ``platform: "onnxruntime_onnx"`` to the backend ``onnxruntime`` and, finding
``<backend-directory>/onnxruntime/model.py`` instead of ``libtriton_onnxruntime.so``, runs this file through
its Python backend. It loads ``<model>/<version>/model.onnx`` (or the config's ``default_model_filename``)
with onnxruntime on the CPU and runs every batch the dynamic batcher hands it as one session run per input
shape, so the unchanged config of a torchzoo repository is what gets loaded, batched and served.
"""

from __future__ import annotations

import json
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        filename = config.get("default_model_filename") or "model.onnx"
        path = os.path.join(args["model_repository"], args["model_version"], filename)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.inputs = [spec["name"] for spec in config["input"]]
        self.outputs = [spec["name"] for spec in config["output"]]

    def execute(self, requests: list) -> list:
        arrays = [[pb_utils.get_input_tensor_by_name(r, name).as_numpy() for name in self.inputs] for r in requests]
        groups: dict[tuple, list[int]] = {}
        for index, tensors in enumerate(arrays):  # requests of one shape run together, as one batch
            groups.setdefault(tuple(t.shape[1:] for t in tensors), []).append(index)
        responses: list = [None] * len(requests)
        for members in groups.values():
            feed = {name: np.concatenate([arrays[i][k] for i in members]) for k, name in enumerate(self.inputs)}
            results = self.session.run(self.outputs, feed)
            start = 0
            for i in members:
                rows = arrays[i][0].shape[0]
                tensors = [
                    pb_utils.Tensor(n, r[start : start + rows]) for n, r in zip(self.outputs, results, strict=True)
                ]
                responses[i] = pb_utils.InferenceResponse(output_tensors=tensors)
                start += rows
        return responses
