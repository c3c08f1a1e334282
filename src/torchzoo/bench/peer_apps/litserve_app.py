"""LitServe serving model.onnx: ``python litserve_app.py GRAPH PORT`` (POST /predict, v2-shaped JSON)."""

import os
import sys

import litserve as ls
import numpy as np
import onnxruntime as ort


class OnnxAPI(ls.LitAPI):
    def setup(self, device: str) -> None:
        options = ort.SessionOptions()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(os.environ["PEER_GRAPH"], options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.output = self.session.get_outputs()[0].name

    def decode_request(self, request: dict) -> np.ndarray:
        tensor = request["inputs"][0]
        return np.asarray(tensor["data"], np.float32).reshape(tensor["shape"])

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input: x})[0]

    def encode_response(self, y: np.ndarray) -> dict:
        return {
            "outputs": [{"name": self.output, "shape": list(y.shape), "datatype": "FP32", "data": y.ravel().tolist()}]
        }


if __name__ == "__main__":
    os.environ["PEER_GRAPH"], port = sys.argv[1], int(sys.argv[2])  # read by each worker process
    ls.LitServer(OnnxAPI(), accelerator="cpu").run(port=port, generate_client_file=False)  # no client.py in the cwd
