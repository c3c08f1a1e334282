import json
import unicodedata

import numpy as np
import onnxruntime as ort

with open("names/manifest.json") as file:
    manifest = json.load(file)
alphabet = manifest["preprocessing"]["alphabet"]
name = "".join(c for c in unicodedata.normalize("NFKD", "Rossi") if not unicodedata.combining(c))
x = np.zeros((1, len(name), len(alphabet)), np.float32)
x[0, range(len(name)), [alphabet.index(c) for c in name]] = 1
session = ort.InferenceSession("names/model.onnx", providers=["CPUExecutionProvider"])
log_probs = session.run(None, {manifest["inputs"][0]["name"]: x})[0][0]
print(manifest["labels"][int(log_probs.argmax())], float(np.exp(log_probs.max())))
