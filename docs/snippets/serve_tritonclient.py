import os

import numpy as np
import tritonclient.http as triton  # the Triton client works unchanged

client = triton.InferenceServerClient(os.environ.get("TORCHZOO_URL", "127.0.0.1:8000"))
image = triton.InferInput("image", [1, 1, 28, 28], "FP32")
image.set_data_from_numpy(np.zeros((1, 1, 28, 28), np.float32), binary_data=True)
logits = client.infer("mnist-mlp", [image]).as_numpy("logits")
print(logits.argmax(axis=1))  # the predicted digit of each image
