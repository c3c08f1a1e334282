import os

from torchzoo.serve_cli import load

artifacts = os.environ.get("TORCHZOO_ARTIFACTS", "artifacts")
model = load(f"{artifacts}/names")  # checks the manifest and the graph's sha256, one session per artifact
predictions = model.predict(["Rossi", "Nakamura"])
print(predictions)  # [{'input': 'Rossi', 'label': 'Italian', 'top': [...]}, ...]
