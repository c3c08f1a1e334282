"""``torchzoo predict MODEL INPUT...``: the exported ONNX graph through onnxruntime (torch is never imported)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from torchzoo.cli.artifacts import artifact_directory
from torchzoo.cli.options import ArtifactsDir, JsonFlag, ModelOrPath, ProviderOpt, Threshold, TopK, VariantOpt
from torchzoo.cli.output import Output
from torchzoo.core.errors import UserInputError


def predict(
    model: ModelOrPath,
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="names: strings; image models: PNG/JPEG files or a .npy batch; wine: 13 comma-separated "
            "numbers or a CSV file; moons: 'x1,x2'; linreg/house: a number; a packaged model on raw tensors: "
            "FILE.npy (one input), FILE.npz (keys: the input names) or NAME=FILE.npy per input."
        ),
    ],
    top_k: TopK = 3,
    threshold: Threshold = 0.5,
    provider: ProviderOpt = "auto",
    variant: VariantOpt = "fp32",
    as_json: JsonFlag = False,
    artifacts_dir: ArtifactsDir = None,
    require_signature: Annotated[
        bool, typer.Option("--require-signature", help="Refuse an artifact whose model.sig does not verify.")
    ] = False,
    key: Annotated[list[Path] | None, typer.Option("--key", help="Trusted public key (PEM) for model.sig.")] = None,
) -> None:
    """Predict with the exported ONNX graph through onnxruntime (torch is never imported)."""
    from torchzoo.core.tasks import get_task
    from torchzoo.serve_cli import load

    out = Output(as_json)
    directory = artifact_directory(model, artifacts_dir)
    if require_signature and not key:
        raise UserInputError("--require-signature needs --key PUBLIC_KEY.pem")
    predictor = load(directory, provider, trusted_keys=key if require_signature or key else None, variant=variant)
    out.note(f"provider: {predictor.provider}" + (f" ({predictor.notice})" if predictor.notice else ""))
    results = predictor.predict(inputs, top_k=top_k, threshold=threshold)
    task = get_task(predictor.task)

    def render() -> None:
        if task.name == "tensor":
            out.table(predictor.name, ["input", "output", "shape", "values"], tensor_rows(results))
            return
        title = f"{predictor.name}: top-{top_k}" if task.name == "classification" else predictor.name
        columns = ["input", *task.columns(top_k, threshold, len(predictor.labels))]
        out.table(title, columns, [[r["input"], *task.cells(r, top_k)] for r in results])

    out.result({"model": predictor.name, "provider": predictor.provider, "results": results}, render)


#: values of an output shown in a table cell (--json gives them all)
SHOWN_VALUES = 6


def tensor_rows(results: list[dict[str, Any]]) -> list[list[str]]:
    """A tensor model's results as table rows: one per sample and output, its shape and first values."""
    import numpy as np

    rows = []
    for result in results:
        for name, values in result["outputs"].items():
            flat = np.ravel(np.asarray(values))
            shown = ", ".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in flat[:SHOWN_VALUES].tolist())
            more = f", ... ({flat.size:,} values)" if flat.size > SHOWN_VALUES else ""
            rows.append([result["input"], name, str(list(np.shape(values))), shown + more])
    return rows
