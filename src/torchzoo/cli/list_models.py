"""``torchzoo list``: every registered model and which artifacts exist (without the train extra: the exported
artifacts found under the artifact root)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torchzoo.cli.options import ArtifactsDir, JsonFlag
from torchzoo.cli.output import Output, fmt_metric
from torchzoo.core.errors import TorchzooError


def list_models(artifacts_dir: ArtifactsDir = None, as_json: JsonFlag = False) -> None:
    """Every registered model, its data, size, metric and which artifacts exist. Without the train extra:
    the exported artifacts found under the artifact root."""
    from torchzoo.core import artifact
    from torchzoo.core.paths import artifacts_root

    out = Output(as_json)
    root = artifacts_root(artifacts_dir)
    try:
        from torchzoo.train import registry

        known = [(spec.name, spec.task, spec.dataset) for spec in registry.models()]
    except ImportError:  # the runtime install: no registry without torch, so list what is on disk
        out.note("the train extra is not installed: listing the artifacts found, not every registered model")
        known = [(p.name, "", "") for p in sorted(root.glob("*")) if (p / artifact.MANIFEST).is_file()]
    rows = []
    for name, task, dataset in known:
        directory = root / name
        record = _read_json_or_none(directory / artifact.TRAIN_RECORD)
        manifest = _read_json_or_none(directory / artifact.MANIFEST)
        status = "not trained" if record is None else "trained"
        if manifest:
            status = "exported: " + ", ".join(manifest.get("formats", {}))
            task = task or str(manifest.get("task", ""))
        rows.append(
            {
                "name": name,
                "task": task,
                "dataset": dataset,
                "parameters": record.get("parameters") if record else None,
                "metric": fmt_metric(record.get("metrics")) if record else "-",
                "profile": record.get("profile") if record else None,
                "status": status,
            }
        )

    def render() -> None:
        columns = ("name", "task", "dataset", "parameters", "metric", "status")
        cells = [
            (
                r["name"],
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


def _read_json_or_none(path: Path) -> Any:
    """A JSON file's content, or None if it is absent or unreadable (list shows what it can)."""
    from torchzoo.core import artifact

    try:
        return artifact.read_json(path) if path.is_file() else None
    except (OSError, ValueError, TorchzooError):
        return None
