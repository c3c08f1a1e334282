"""Cold start: a new process to a printed answer, ``torchzoo predict names Rossi`` vs the same through torch."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from torchzoo.core import artifact

PREDICT = "torchzoo predict (onnxruntime)"
TORCH = "torch script (import torch, load state_dict)"

# The torch side: a script that builds the names model, loads its state_dict and prints the top language.
COLD_TORCH = """
import sys, torch
from torchzoo.core.text_codec import ALPHABET, encode_names
from torchzoo.train.names import HIDDEN, N_LANGUAGES, CharRNN
model = CharRNN(len(ALPHABET), HIDDEN, N_LANGUAGES)
model.load_state_dict(torch.load(sys.argv[1], weights_only=True))
model.eval()
with torch.no_grad():
    scores = model(torch.from_numpy(encode_names(["Rossi"]))).exp()[0]
labels = {labels!r}
print(labels[int(scores.argmax())], float(scores.max()))
"""


def cold_start(root: Path, repeats: int) -> dict[str, Any]:
    """Median seconds of each command over ``repeats`` runs after one warm-up run, and their ratio."""
    directory = root / "names"
    labels = artifact.read_json(directory / artifact.MANIFEST)["labels"]
    cli = [sys.executable, "-c", "from torchzoo.cli import main; main()"]
    commands = {
        PREDICT: [*cli, "predict", "names", "Rossi", "--artifacts-dir", str(root)],
        TORCH: [sys.executable, "-c", COLD_TORCH.format(labels=labels), str(directory / artifact.STATE_DICT)],
    }
    times: dict[str, list[float]] = {k: [] for k in commands}
    for _ in range(repeats + 1):
        for label, command in commands.items():
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            times[label].append(time.perf_counter() - start)
    result: dict[str, Any] = {
        label: {"median_s": statistics.median(t[1:]), "runs": t[1:]} for label, t in times.items()
    }
    result["ratio_predict_over_torch"] = result[PREDICT]["median_s"] / result[TORCH]["median_s"]
    return result
