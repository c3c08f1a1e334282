import os

import numpy as np
import tritonclient.grpc as triton  # Triton's gRPC client, unchanged

# started as: torchzoo serve mnist-mlp --grpc-port 8001 (TORCHZOO_GRPC is only the snippet's way to find it)
client = triton.InferenceServerClient(os.environ.get("TORCHZOO_GRPC", "127.0.0.1:8001"))
image = triton.InferInput("image", [1, 1, 28, 28], "FP32")
image.set_data_from_numpy(np.zeros((1, 1, 28, 28), np.float32))  # sent as raw_input_contents
logits = client.infer("mnist-mlp", [image]).as_numpy("logits")
stats = client.get_inference_statistics("mnist-mlp", as_json=True)["model_stats"][0]
print(logits.argmax(axis=1), stats["inference_count"])  # the digit, and the samples served so far
