"""The one export path: write the requested formats of an :class:`ExportContext`, prove each equivalent to the
eager model, publish atomically; and re-verify an artifact from its files. A zoo model
(:mod:`torchzoo.export.zoo`) and a user's own (:mod:`torchzoo.export.package`) both go through here.

Export builds the new artifact version in a staging directory (:func:`torchzoo.core.artifact.staged`): it
saves the check inputs and the eager model's outputs on them (``check_inputs.npz``), writes each format,
checks it against the eager outputs, then writes ``equivalence.json`` and ``manifest.json`` (hashing every
file) and publishes the whole set atomically. Every requested format is written and checked even after one
fails; if any failed, nothing is published, the report goes to ``artifacts/.failed/`` and the outcome lists
every failing row. ``verify`` re-runs every check from the files on disk alone.
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
from torchzoo.export.variants import VARIANTS, Refused, VariantReport, check_variant, manifest_block, save_heldout
from torchzoo.train.family import CheckCase

CHECK_SEED = 1234
Outputs = dict[str, list[np.ndarray]]  # case name -> the eager model's outputs on it


@dataclass
class ExportOutcome:
    model: str
    reports: list[FormatReport]
    #: where the equivalence report of a failed export was kept (nothing was published)
    failure_report: Path | None = None

    @property
    def passed(self) -> bool:
        return all(r.acceptable for r in self.reports)


class _Unpublished(Exception):
    """Raised inside the staging block so that a failed export publishes nothing."""


def resolve_formats(fmt: str) -> list[str]:
    if fmt == "all":
        return list(FORMATS)
    if fmt not in FORMATS:
        raise UserInputError(f"unknown format '{fmt}'; choose one of: {', '.join(FORMATS)}, all")
    return [fmt]


def reference_outputs(ctx: ExportContext, cases: list[CheckCase]) -> Outputs:
    """The eager model's outputs on every case. A model whose outputs change between two runs on the same input
    (randomness at inference) or whose run changes its parameters or buffers (state) has no reference to prove a
    format against: that is a :class:`UserInputError` naming the output or the tensor."""
    run = torch_runner(ctx.model)
    before = {k: v.detach().clone() for k, v in ctx.model.state_dict().items()}
    expected = {case.name: run(case.inputs) for case in cases}
    for key, value in ctx.model.state_dict().items():
        if key in before and not torch.equal(before[key], value):
            raise UserInputError(
                f"{ctx.name}: running the model changed its state ({key!r}); export needs a pure forward"
            )
    first = cases[0]
    for spec, a, b in zip(ctx.outputs, expected[first.name], run(first.inputs), strict=False):
        if a.shape != b.shape or not np.array_equal(a, b, equal_nan=True):
            raise UserInputError(
                f"{ctx.name}: output {spec.name!r} differs between two runs on the same input (randomness at "
                "inference, or state the forward changes); export needs a deterministic forward"
            )
    return expected


def _check(ctx: ExportContext, name: str, path: Path, cases: list[CheckCase], expected: Outputs) -> FormatReport:
    """Run one format's file through its runners and compare with the eager outputs on every case."""
    if name in VARIANTS:
        try:
            if ctx.heldout is None:
                raise Refused("no held-out test set to check it on")
            return check_variant(ctx, name, path, ctx.heldout)
        except Exception as exc:  # a variant that cannot be run or checked is refused, with the reason
            return VariantReport(name, None, "task accuracy vs float32", refused=first_line(exc))  # type: ignore[arg-type]
    try:
        with quiet():
            runners = FORMATS[name].runners(ctx, path)
        names = [t.name for t in ctx.outputs]
        return check_format(name, expected, runners, cases, names, ctx.task, ctx.tolerance, ctx.tolerance_reason)
    except Exception as exc:  # a runtime that cannot load the file fails the check, with the reason
        return FormatReport(name, ctx.tolerance, ctx.tolerance_reason, error=first_line(exc))


def _write_and_check(ctx: ExportContext, name: str, target: Path, cases: list[CheckCase], expected: Outputs):
    """(what the writer recorded, the check's report). An exporter that fails is a failed format, or a refused one
    where refusing is allowed (a variant that does not apply; a format in ``ctx.refusable``)."""
    try:
        info = FORMATS[name].write(ctx, target)
    except Exception as exc:
        reason = str(exc) if isinstance(exc, Refused) else first_line(exc)
        if name in VARIANTS:
            return {}, VariantReport(name, None, "task accuracy vs float32", refused=reason)  # type: ignore[arg-type]
        if name in ctx.refusable:
            return {}, FormatReport(
                name, ctx.tolerance, ctx.tolerance_reason, refused=f"{name} export failed: {reason}"
            )
        return {}, FormatReport(name, ctx.tolerance, ctx.tolerance_reason, error=reason)
    report = _check(ctx, name, target, cases, expected)
    if name in ctx.refusable and info.get("method") == "trace" and not report.passed:  # a trace the check disproves
        why = (report.failures() or ["no checks ran"])[0]
        report = FormatReport(name, ctx.tolerance, ctx.tolerance_reason, refused=f"traced TorchScript differs: {why}")
    return info, report


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


def _save_cases(cases: list[CheckCase], expected: Outputs, target: Path) -> None:
    arrays = {f"{c.name}/{i}": a for c in cases for i, a in enumerate(c.inputs)}
    arrays |= {f"{c.name}/out/{i}": a for c in cases for i, a in enumerate(expected[c.name])}
    with artifact.atomic_path(target) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def load_cases(table: list[dict[str, Any]], data: bytes) -> tuple[list[CheckCase], Outputs]:
    """The check cases saved in ``check_inputs.npz``, and the eager outputs saved with them (where they were)."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        cases = [
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
        saved: Outputs = {}
        for case in cases:
            outs = sorted(
                (k for k in npz.files if k.startswith(f"{case.name}/out/")), key=lambda k: int(k.rsplit("/", 1)[1])
            )
            if outs:
                saved[case.name] = [npz[k] for k in outs]
    return cases, saved


def export_artifact(
    ctx: ExportContext,
    cases: list[CheckCase],
    formats: list[str],
    artifacts_dir: Path,
    keep_previous: bool = True,
    reference: str = "torch eager",
) -> ExportOutcome:
    """Write, check and publish ``formats`` of ``ctx`` as ``artifacts_dir/<ctx.name>``. ``keep_previous``: the
    formats of the live version not re-made now stay (a zoo model's re-export of one format); otherwise the new
    version holds only what is made now (a user's model, packaged again)."""
    live = artifacts_dir / ctx.name
    manifest_path = live / artifact.MANIFEST
    kept = artifact.read_json(manifest_path).get("formats", {}) if keep_previous and manifest_path.exists() else {}
    if "onnx" in formats:  # the variants are made from model.onnx: a new one re-makes those it had
        formats = [*formats, *(name for name in VARIANTS if name in kept and name not in formats)]
    variants = [name for name in formats if name in VARIANTS]
    kept = {k: v for k, v in kept.items() if k not in formats and (live / FORMATS[k].filename).exists()}
    previous = (
        artifact.read_json(live / artifact.EQUIVALENCE) if kept and (live / artifact.EQUIVALENCE).exists() else {}
    )
    previous_reports = {**previous.get("formats", {}), **previous.get("variants", {})}
    regenerated = {artifact.MANIFEST, artifact.EQUIVALENCE, artifact.CHECK_INPUTS, artifact.SIGNATURE}
    regenerated |= {FORMATS[name].filename for name in formats}
    if variants:
        regenerated.add(artifact.HELDOUT)
    carry = []
    if keep_previous and live.is_dir():
        carry = [p.name for p in live.iterdir() if p.is_file() and p.name not in regenerated]
    if not variants:
        ctx.heldout = None
    expected = reference_outputs(ctx, cases)

    equivalence: dict[str, Any] = {
        "model": ctx.name,
        "reference": reference,
        "check_seed": CHECK_SEED,
        "cases": _case_table(cases),
        "formats": {k: v for k, v in previous_reports.items() if k in kept and k not in VARIANTS},
        #: the int8/fp16 variants' accuracy checks, published or refused (torchzoo.export.variants)
        "variants": {k: v for k, v in previous_reports.items() if k in kept and k in VARIANTS},
    }
    reports: list[FormatReport] = []
    refused: dict[str, str] = {}
    try:
        with artifact.staged(artifacts_dir, ctx.name, carry) as stage:
            _save_cases(cases, expected, stage / artifact.CHECK_INPUTS)
            if ctx.heldout is not None:
                save_heldout(ctx.heldout, stage / artifact.HELDOUT)
            for name in formats:
                info, report = _write_and_check(ctx, name, stage / FORMATS[name].filename, cases, expected)
                reports.append(report)
                equivalence["variants" if name in VARIANTS else "formats"][name] = report.to_json()
                if report.refused:  # refused: not published, listed in the manifest with the reason
                    refused[name] = report.refused
                    (stage / FORMATS[name].filename).unlink(missing_ok=True)
                    continue
                if isinstance(report, VariantReport):
                    info = {
                        **info,
                        "check": "task accuracy vs float32 (see variants)",
                        "accuracy_check": report.accuracy,
                    }
                kept[name] = {**info, "equivalence": "passed", "max_abs_diff": report.max_abs}
            if reports and not any(name not in refused for name in formats):
                why = "every requested format was refused; nothing to publish"
                reports.append(FormatReport("formats", ctx.tolerance, ctx.tolerance_reason, error=why))
            if not all(r.acceptable for r in reports):
                raise _Unpublished
            artifact.write_json_atomic(stage / artifact.EQUIVALENCE, equivalence)
            variant_refusals = {k: v for k, v in refused.items() if k in VARIANTS}
            block = manifest_block(ctx.task, kept, stage, variant_refusals)
            record = {**ctx.record, "refused_formats": {k: v for k, v in refused.items() if k not in VARIANTS}}
            artifact.write_json_atomic(stage / artifact.MANIFEST, build_manifest(stage, record, kept, variants=block))
    except _Unpublished:
        saved = artifact.write_failure(artifacts_dir, ctx.name, artifact.EQUIVALENCE, equivalence)
        return ExportOutcome(ctx.name, reports, failure_report=saved)
    return ExportOutcome(ctx.name, reports)


def read_checked(directory: Path) -> tuple[dict[str, Any], dict[str, Any], list[CheckCase], Outputs]:
    """An artifact's manifest (every listed file re-hashed, the graph's self-containment checked), its equivalence
    report (the verified bytes, parsed once) and its saved check cases with the eager outputs saved with them."""
    manifest = artifact.read_manifest(directory)
    artifact.verify_files(directory, manifest)  # every listed file: a regular file inside, its size and sha256
    if artifact.CHECK_INPUTS not in manifest["files"] or artifact.EQUIVALENCE not in manifest["files"]:
        raise ArtifactError(f"{directory} has no {artifact.CHECK_INPUTS}; re-run 'torchzoo export {manifest['model']}'")
    if artifact.ONNX in manifest["files"]:  # the same self-containment rule as the runtime, before a session
        check_graph(artifact.read_verified(directory, manifest, artifact.ONNX), f"{directory / artifact.ONNX}")
    equivalence = json.loads(artifact.read_verified(directory, manifest, artifact.EQUIVALENCE))
    cases, saved = load_cases(equivalence["cases"], artifact.read_verified(directory, manifest, artifact.CHECK_INPUTS))
    return manifest, equivalence, cases, saved


def verify_artifact(
    ctx: ExportContext, directory: Path, manifest: dict[str, Any], cases: list[CheckCase], expected: Outputs
) -> list[FormatReport]:
    """Re-run every published format's check on the saved cases against ``expected``."""
    from torchzoo.export.variants import load_heldout

    if any(name in VARIANTS for name in manifest["formats"]):
        data = artifact.read_verified(directory, manifest, artifact.HELDOUT)
        ctx.heldout = load_heldout(data, len(ctx.inputs), artifact.HELDOUT)
    reports = [_check(ctx, name, directory / FORMATS[name].filename, cases, expected) for name in manifest["formats"]]
    for report in reports:  # a published variant was within its thresholds: outside them now, it fails
        if isinstance(report, VariantReport) and report.refused:
            report.error, report.refused = f"no longer within its thresholds: {report.refused}", None
    return reports
