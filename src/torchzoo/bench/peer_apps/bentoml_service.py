"""BentoML serving model.onnx: ``PEER_GRAPH=GRAPH bentoml serve bentoml_service:OnnxService`` (POST /infer)."""

import os

import bentoml
import numpy as np
import onnxruntime as ort


@bentoml.service
class OnnxService:
    def __init__(self) -> None:
        options = ort.SessionOptions()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(os.environ["PEER_GRAPH"], options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.output = self.session.get_outputs()[0].name

    @bentoml.api
    def infer(self, inputs: list[dict]) -> dict:
        tensor = inputs[0]
        x = np.asarray(tensor["data"], np.float32).reshape(tensor["shape"])
        y = self.session.run(None, {self.input: x})[0]
        return {
            "outputs": [{"name": self.output, "shape": list(y.shape), "datatype": "FP32", "data": y.ravel().tolist()}]
        }
