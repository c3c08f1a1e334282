"""Export a trained model to the requested formats, each proven equivalent before it lands; re-verify.

Export builds the new artifact version in a staging directory (:func:`torchzoo.core.artifact.staged`): it
saves the check inputs (``check_inputs.npz``), writes each format, checks it against the eager model,
then writes ``equivalence.json`` and ``manifest.json`` (hashing every file) and publishes the whole set
atomically. Every requested format is written and checked even after one fails; if any failed, nothing
is published, the report goes to ``artifacts/.failed/`` and the outcome lists every failing row.
``verify`` re-runs every check from the files on disk alone.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from torchzoo.core import artifact
from torchzoo.core.errors import ArtifactError, UserInputError, first_line
from torchzoo.core.graph_check import check_graph
from torchzoo.export.context import ExportContext, quiet, torch_runner
from torchzoo.export.equivalence import FormatReport, check_format
from torchzoo.export.formats import FORMATS
from torchzoo.export.manifest import build_manifest
from torchzoo.export.variants import (
    VARIANTS,
    Refused,
    VariantReport,
    bounded_heldout,
    check_variant,
    load_heldout,
    manifest_block,
    save_heldout,
)
from torchzoo.train.family import CheckCase, Family
from torchzoo.train.runner import load_trained
from torchzoo.train.spec import ModelSpec

CHECK_SEED = 1234
REFERENCE = "torch eager, float CPU, rebuilt from model.pt (weights_only=True)"


@dataclass
class ExportOutcome:
    model: str
    reports: list[FormatReport]
    #: where the equivalence report of a failed export was kept (nothing was published)
    failure_report: Path | None = None

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.reports)


class _Unpublished(Exception):
    """Raised inside the staging block so that a failed export publishes nothing."""


def resolve_formats(fmt: str) -> list[str]:
    if fmt == "all":
        return list(FORMATS)
    if fmt not in FORMATS:
        raise UserInputError(f"unknown format '{fmt}'; choose one of: {', '.join(FORMATS)}, all")
    return [fmt]


def _context(spec: ModelSpec, family: Family, model: torch.nn.Module, record: dict, cases: list[CheckCase]):
    heldout = [c for c in cases if c.kind == "heldout"]
    example = max(heldout, key=lambda c: c.inputs[0].shape[0])
    return ExportContext(spec, family, model, record, tuple(torch.from_numpy(a) for a in example.inputs))


def _check_variant(ctx: ExportContext, name: str, path: Path) -> VariantReport:
    """A variant's accuracy check; one that cannot be run or checked is refused, with the reason."""
    try:
        if ctx.heldout is None:
            raise Refused("no held-out test set to check it on")
        return check_variant(ctx, name, path, ctx.heldout)
    except Exception as exc:
        return VariantReport(name, None, "task accuracy vs float32", refused=first_line(exc))  # type: ignore[arg-type]


def _check(ctx: ExportContext, name: str, path: Path, cases: list[CheckCase]) -> FormatReport:
    """Run one format's file through its runners and compare with the eager model on every case."""
    family = ctx.family
    if name in VARIANTS:
        return _check_variant(ctx, name, path)
    try:
        with quiet():
            runners = FORMATS[name].runners(ctx, path)
        return check_format(
            name,
            torch_runner(ctx.model),
            runners,
            cases,
            [t.name for t in family.outputs],
            ctx.spec.task,
            family.tolerance,
            family.tolerance_reason,
        )
    except Exception as exc:  # a runtime that cannot load the file fails the check, with the reason
        return FormatReport(name, family.tolerance, family.tolerance_reason, error=first_line(exc))


def _case_table(cases: list[CheckCase]) -> list[dict[str, Any]]:
    return [
        {
            "name": c.name,
            "kind": c.kind,
            "input_shapes": [list(a.shape) for a in c.inputs],
            "tolerance": c.tolerance,
            "tolerance_reason": c.tolerance_reason,
            "rtol": c.rtol,
        }
        for c in cases
    ]


def _save_cases(cases: list[CheckCase], target: Path) -> None:
    arrays = {f"{c.name}/{i}": a for c in cases for i, a in enumerate(c.inputs)}
    with artifact.atomic_path(target) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def _load_cases(directory: Path, table: list[dict[str, Any]], data: bytes) -> list[CheckCase]:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return [
            CheckCase(
                c["name"],
                tuple(npz[f"{c['name']}/{i}"] for i in range(len(c["input_shapes"]))),
                c["kind"],
                c.get("tolerance"),
                c.get("tolerance_reason"),
                c.get("rtol", 0.0),
            )
            for c in table
        ]


def export_model(
    spec: ModelSpec, formats: list[str], artifacts_dir: Path, data_dir: Path | None = None
) -> ExportOutcome:
    live = artifacts_dir / spec.name
    model, record = load_trained(spec, artifacts_dir)
    family = spec.family
    data = family.load_data(spec, data_dir, record["seed"])
    cases = family.check_cases(data, np.random.default_rng(CHECK_SEED))
    ctx = _context(spec, family, model, record, cases)
    manifest_path = live / artifact.MANIFEST
    kept = artifact.read_json(manifest_path).get("formats", {}) if manifest_path.exists() else {}
    if "onnx" in formats:  # the variants are made from model.onnx: a new one re-makes those it had
        formats = [*formats, *(name for name in VARIANTS if name in kept and name not in formats)]
    variants = [name for name in formats if name in VARIANTS]
    if variants:
        ctx.heldout = bounded_heldout(family.heldout_set(data), CHECK_SEED)
        ctx.calibration = family.calibration_set(data)

    kept = {k: v for k, v in kept.items() if k not in formats and (live / FORMATS[k].filename).exists()}
    previous = artifact.read_json(live / artifact.EQUIVALENCE) if (live / artifact.EQUIVALENCE).exists() else {}
    previous_reports = {**previous.get("formats", {}), **previous.get("variants", {})}
    regenerated = {artifact.MANIFEST, artifact.EQUIVALENCE, artifact.CHECK_INPUTS, artifact.SIGNATURE}
    regenerated |= {FORMATS[name].filename for name in formats}
    if variants:
        regenerated.add(artifact.HELDOUT)
    carry = [p.name for p in live.iterdir() if p.is_file() and p.name not in regenerated] if live.is_dir() else []

    equivalence: dict[str, Any] = {
        "model": spec.name,
        "reference": REFERENCE,
        "check_seed": CHECK_SEED,
        "cases": _case_table(cases),
        "formats": {k: v for k, v in previous_reports.items() if k in kept and k not in VARIANTS},
        #: the int8/fp16 variants' accuracy checks, published or refused (torchzoo.export.variants)
        "variants": {k: v for k, v in previous_reports.items() if k in kept and k in VARIANTS},
    }
    reports: list[FormatReport] = []
    refused: dict[str, str] = {}
    try:
        with artifact.staged(artifacts_dir, spec.name, carry) as stage:
            _save_cases(cases, stage / artifact.CHECK_INPUTS)
            if ctx.heldout is not None:
                save_heldout(ctx.heldout, stage / artifact.HELDOUT)
            for name in formats:
                fmt = FORMATS[name]
                try:
                    info = fmt.write(ctx, stage / fmt.filename)
                    report = _check(ctx, name, stage / fmt.filename, cases)
                except Exception as exc:
                    info = {}
                    if name in VARIANTS:  # a variant that does not apply, or that its tools cannot make: refused
                        reason = str(exc) if isinstance(exc, Refused) else first_line(exc)
                        report = VariantReport(name, None, "task accuracy vs float32", refused=reason)  # type: ignore[arg-type]
                    else:  # an exporter crash is a failed format, reported like a mismatch
                        report = FormatReport(name, family.tolerance, family.tolerance_reason, error=first_line(exc))
                reports.append(report)
                equivalence["variants" if name in VARIANTS else "formats"][name] = report.to_json()
                if isinstance(report, VariantReport):
                    if report.refused:  # refused: not published, listed in the manifest with the reason
                        refused[name] = report.refused
                        (stage / fmt.filename).unlink(missing_ok=True)
                        continue
                    info = {**info, "check": "task accuracy vs float32 (see variants)"}
                    info["accuracy_check"] = report.accuracy
                kept[name] = {**info, "equivalence": "passed", "max_abs_diff": report.max_abs}
            if not all(r.acceptable for r in reports):
                raise _Unpublished
            artifact.write_json_atomic(stage / artifact.EQUIVALENCE, equivalence)
            block = manifest_block(spec.task, kept, stage, refused)
            artifact.write_json_atomic(stage / artifact.MANIFEST, build_manifest(stage, record, kept, variants=block))
    except _Unpublished:
        saved = artifact.write_failure(artifacts_dir, spec.name, artifact.EQUIVALENCE, equivalence)
        return ExportOutcome(spec.name, reports, failure_report=saved)
    return ExportOutcome(spec.name, reports)


def verify_model(spec: ModelSpec, artifacts_dir: Path) -> list[FormatReport]:
    """Re-hash every file, rebuild the eager model from ``model.pt`` and re-run every format's check on
    the saved check inputs. Needs nothing but the artifact directory (no dataset)."""
    directory = artifacts_dir / spec.name
    manifest = artifact.read_manifest(directory)
    artifact.verify_files(directory, manifest)  # every listed file: a regular file inside, its size and sha256
    if artifact.CHECK_INPUTS not in manifest["files"] or artifact.EQUIVALENCE not in manifest["files"]:
        raise ArtifactError(f"{directory} has no {artifact.CHECK_INPUTS}; re-run 'torchzoo export {spec.name}'")
    if artifact.ONNX in manifest["files"]:  # the same self-containment rule as the runtime, before a session
        check_graph(artifact.read_verified(directory, manifest, artifact.ONNX), f"{directory / artifact.ONNX}")
    model, record = load_trained(spec, artifacts_dir)
    family = spec.family
    table = json.loads(artifact.read_verified(directory, manifest, artifact.EQUIVALENCE))["cases"]
    cases = _load_cases(directory, table, artifact.read_verified(directory, manifest, artifact.CHECK_INPUTS))
    ctx = _context(spec, family, model, record, cases)
    if any(name in VARIANTS for name in manifest["formats"]):
        data = artifact.read_verified(directory, manifest, artifact.HELDOUT)
        ctx.heldout = load_heldout(data, len(family.inputs), artifact.HELDOUT)
    reports = [_check(ctx, name, directory / FORMATS[name].filename, cases) for name in manifest["formats"]]
    for report in reports:  # a published variant was within its thresholds: outside them now, it fails
        if isinstance(report, VariantReport) and report.refused:
            report.error, report.refused = f"no longer within its thresholds: {report.refused}", None
    return reports
