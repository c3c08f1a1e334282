"""The torch-free runtime: load an artifact directory and predict with onnxruntime.

Imports numpy, onnxruntime and (for images) Pillow only. Use it from another application::

    from torchzoo.serve_cli import load
    model = load("artifacts/names")
    model.predict(["Rossi"])
"""

from torchzoo.serve_cli.predictor import Predictor, load

__all__ = ["Predictor", "load"]
