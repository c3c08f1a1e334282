"""``torchzoo report``: the lab's plots of the trained models, in <artifacts>/report.md."""

from __future__ import annotations

from torchzoo.cli.options import ArtifactsDir, JsonFlag, require_train_extra
from torchzoo.cli.output import Output


def report(artifacts_dir: ArtifactsDir = None, as_json: JsonFlag = False) -> None:
    """Write <artifacts>/report.md: the lab's accuracy, loss, fit and boundary plots of the trained models."""
    require_train_extra("report")
    from torchzoo import report as pages
    from torchzoo.core.paths import artifacts_root

    out = Output(as_json)
    result = pages.write_report(artifacts_root(artifacts_dir))
    data = {"report": str(result.path), "images": [str(p) for p in result.images], "skipped": result.skipped}
    skipped = f"; skipped: {', '.join(result.skipped)}" if result.skipped else ""
    plots = result.path.parent / pages.REPORT_DIR
    out.result(data, lambda: out.text(f"wrote {result.path} ({len(result.images)} plots in {plots}){skipped}"))
