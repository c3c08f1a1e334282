"""Export a trained model to the requested formats, each proven equivalent before it lands.

For each format: write to a temp path beside the target, run the equivalence check on that temp file,
and only then rename it into place. A failed check removes the temp file, records the failure in
``equivalence.json`` and raises; the previous good file (if any) is untouched. ``manifest.json`` is
rewritten last, hashing every file present.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from torchzoo import artifact
from torchzoo.errors import CheckFailedError, UserInputError
from torchzoo.export.equivalence import FormatReport, check_format
from torchzoo.export.formats import FORMATS, ExportContext, quiet, torch_runner
from torchzoo.export.manifest import build_manifest
from torchzoo.train.registry import ModelSpec
from torchzoo.train.runner import load_trained

CHECK_SEED = 1234


@dataclass
class ExportOutcome:
    model: str
    reports: list[FormatReport]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.reports)


def resolve_formats(fmt: str) -> list[str]:
    if fmt == "all":
        return list(FORMATS)
    if fmt not in FORMATS:
        raise UserInputError(f"unknown format '{fmt}'; choose one of: {', '.join(FORMATS)}, all")
    return [fmt]


def export_model(
    spec: ModelSpec, formats: list[str], artifacts_dir: Path, data_dir: Path | None = None
) -> ExportOutcome:
    directory = artifacts_dir / spec.name
    model, record = load_trained(spec, artifacts_dir)
    family = spec.load_family()
    data = family.load_data(spec, data_dir, record["seed"])
    cases = family.check_cases(data, np.random.default_rng(CHECK_SEED))
    heldout = [c for c in cases if c.kind == "heldout"]
    example_case = max(heldout, key=lambda c: c.inputs[0].shape[0])
    ctx = ExportContext(spec, family, model, record, tuple(torch.from_numpy(a) for a in example_case.inputs))
    reference = torch_runner(model)
    output_names = [t.name for t in family.outputs]

    with artifact.locked(directory):
        manifest_path = directory / artifact.MANIFEST
        previous = artifact.read_json(manifest_path).get("formats", {}) if manifest_path.exists() else {}
        equivalence_path = directory / artifact.EQUIVALENCE
        equivalence = artifact.read_json(equivalence_path) if equivalence_path.exists() else {}
        equivalence.update(
            {
                "model": spec.name,
                "reference": "torch eager (float32 CPU)",
                "cases": [
                    {"name": c.name, "kind": c.kind, "input_shapes": [list(a.shape) for a in c.inputs]} for c in cases
                ],
            }
        )
        equivalence.setdefault("formats", {})
        reports = []
        for name in formats:
            fmt = FORMATS[name]
            target = directory / fmt.filename
            info: dict[str, Any] = {}
            with artifact.atomic_path(target) as tmp:
                try:
                    info = fmt.write(ctx, tmp)
                    with quiet():
                        runners = fmt.runners(ctx, tmp)
                    report = check_format(
                        name,
                        reference,
                        runners,
                        cases,
                        output_names,
                        spec.task,
                        family.tolerance,
                        family.tolerance_reason,
                    )
                except Exception as exc:  # an exporter crash is a failed format, reported like a mismatch
                    report = FormatReport(name, family.tolerance, family.tolerance_reason, error=_one_line(exc))
                reports.append(report)
                equivalence["formats"][name] = report.to_json()
                if not report.passed:
                    artifact.write_json_atomic(equivalence_path, equivalence)
                    raise CheckFailedError(f"{spec.name}: {report.summary()}; {fmt.filename} not written")
            previous[name] = {**info, "equivalence": "passed", "max_abs_diff": report.max_abs}
        artifact.write_json_atomic(equivalence_path, equivalence)
        artifact.write_json_atomic(manifest_path, build_manifest(directory, record, previous))
    return ExportOutcome(spec.name, reports)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
