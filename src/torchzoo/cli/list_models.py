"""``torchzoo list``: every registered model and which artifacts exist, and beside them the models packaged from
one's own PyTorch code (``torchzoo.package``: artifact directories whose manifest's origin is not the zoo);
without the train extra, the exported artifacts found under the artifact root."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torchzoo.cli.options import ArtifactsDir, JsonFlag
from torchzoo.cli.output import Output, fmt_metric
from torchzoo.core.errors import TorchzooError


def list_models(artifacts_dir: ArtifactsDir = None, as_json: JsonFlag = False) -> None:
    """Every registered model, its data, size, metric and which artifacts exist, then the models packaged from
    your own code (origin python, pt2 or factory). Without the train extra: the exported artifacts found under
    the artifact root."""
    from torchzoo.core import artifact
    from torchzoo.core.paths import artifacts_root

    out = Output(as_json)
    root = artifacts_root(artifacts_dir)
    try:
        from torchzoo.train import registry

        known = [(spec.name, spec.task, spec.dataset) for spec in registry.models()]
    except ImportError:  # the runtime install: no registry without torch, so list what is on disk
        out.note("the train extra is not installed: listing the artifacts found, not every registered model")
        known = []
    listed = {name for name, _, _ in known}
    on_disk = sorted(p.name for p in root.glob("*") if (p / artifact.MANIFEST).is_file())
    own = [(name, "", "") for name in on_disk if name not in listed]
    rows = [_row(root / name, task, dataset) for name, task, dataset in known + own]

    def render() -> None:
        columns = ("name", "origin", "task", "dataset", "parameters", "metric", "status")
        cells = [
            (
                r["name"],
                r["origin"],
                r["task"],
                r["dataset"],
                "-" if r["parameters"] is None else f"{r['parameters']:,}",
                r["metric"],
                r["status"],
            )
            for r in rows
        ]
        out.table(f"torchzoo models ({root})", columns, cells)

    out.result(rows, render)


def _row(directory: Path, task: str, dataset: str) -> dict[str, Any]:
    """One model's row: from its train.json where it was trained here, else from its manifest (a packaged model
    of one's own has no train.json: its task, parameters and metrics are the manifest's)."""
    from torchzoo.core import artifact

    record = _read_json_or_none(directory / artifact.TRAIN_RECORD)
    manifest = _read_json_or_none(directory / artifact.MANIFEST)
    manifest = manifest if isinstance(manifest, dict) else {}
    origin = manifest.get("origin")
    about = record if isinstance(record, dict) else manifest
    status = "not trained" if record is None else "trained"
    if manifest:
        status = "exported: " + ", ".join(manifest.get("formats") or {})
    data = manifest.get("dataset")
    return {
        "name": directory.name,
        "origin": str(origin.get("kind", "zoo")) if isinstance(origin, dict) else "zoo",
        "task": task or str(manifest.get("task", "")),
        "dataset": dataset or (str(data.get("name", "")) if isinstance(data, dict) else ""),
        "parameters": count if isinstance(count := about.get("parameters"), int) else None,
        "metric": fmt_metric(about.get("metrics")) if about else "-",
        "profile": record.get("profile") if isinstance(record, dict) else None,
        "status": status,
    }


def _read_json_or_none(path: Path) -> Any:
    """A JSON file's content, or None if it is absent or unreadable (list shows what it can)."""
    from torchzoo.core import artifact

    try:
        return artifact.read_json(path) if path.is_file() else None
    except (OSError, ValueError, TorchzooError):
        return None
