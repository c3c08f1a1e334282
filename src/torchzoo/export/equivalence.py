"""The equivalence checker: run the eager model and an exported format on the same inputs, compare.

Every (runner, case, output) gets a row with max abs / max rel difference and top-1 agreement; a format
passes only if every row is within tolerance and predictions agree on every held-out input. Every
failure is collected, not just the first: each failing row says why (``shape``, ``tolerance``,
``agreement`` or ``runner-error``), and the caller raises once with all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from torchzoo.core.errors import first_line
from torchzoo.core.tasks import get_task
from torchzoo.train.family import CheckCase

Runner = Callable[[tuple[np.ndarray, ...]], list[np.ndarray]]


@dataclass
class CheckRow:
    runner: str
    case: str
    kind: str
    input_shapes: list[list[int]]
    output: str
    max_abs: float
    max_rel: float
    agreement: float | None
    tolerance: float
    passed: bool
    #: why the row failed: shape | tolerance | agreement | runner-error (None when it passed)
    failure: str | None = None
    detail: str | None = None


@dataclass
class FormatReport:
    format: str
    tolerance: float
    tolerance_reason: str
    rows: list[CheckRow] = field(default_factory=list)
    error: str | None = None
    #: cases checked at another tolerance than the format's: case -> (abs tolerance, rel tolerance, why)
    case_tolerances: dict[str, tuple[float, float, str]] = field(default_factory=dict)
    #: why the format was not made, where refusing is allowed (an int8/fp16 variant that does not apply, a user's
    #: model that TorchScript cannot express); a refused format is not published and fails nothing
    refused: str | None = None

    @property
    def passed(self) -> bool:
        return self.refused is None and self.error is None and bool(self.rows) and all(r.passed for r in self.rows)

    @property
    def acceptable(self) -> bool:
        """Passed, or refused where refusing is allowed: not a failure of the export."""
        return self.passed or self.refused is not None

    @property
    def max_abs(self) -> float:
        return max((r.max_abs for r in self.rows), default=float("nan"))

    def failing(self) -> list[CheckRow]:
        return [r for r in self.rows if not r.passed]

    def worst(self) -> CheckRow | None:
        return max(self.failing() or self.rows, key=lambda r: r.max_abs, default=None)

    def failures(self) -> list[str]:
        """One line per failing row (or the format-level error): what failed, where, and why."""
        if self.refused:
            return [f"{self.format}: refused: {self.refused}"]
        if self.error:
            return [f"{self.format}: error: {self.error}"]
        lines = [f"{self.format} / {r.runner} / {r.case} / {r.output}: {r.failure}: {r.detail}" for r in self.failing()]
        return lines or ([] if self.rows else [f"{self.format}: no checks ran"])

    def summary(self) -> str:
        if self.refused:
            return f"{self.format}: refused: {self.refused}"
        if self.error:
            return f"{self.format}: error: {self.error}"
        worst = self.worst()
        verdict = "pass" if self.passed else "FAIL"
        if worst is None:
            return f"{self.format}: {verdict} (no checks ran)"
        return (
            f"{self.format}: {verdict}, max abs diff {worst.max_abs:.3g} (tolerance {worst.tolerance:g}, "
            f"top-1 agreement {worst.agreement}) at {worst.runner}/{worst.case}/{worst.output}"
        )

    def to_json(self) -> dict[str, Any]:
        agreements = [r.agreement for r in self.rows if r.kind == "heldout" and r.agreement is not None]
        return {
            "passed": self.passed,
            "tolerance_abs": self.tolerance,
            "tolerance_reason": self.tolerance_reason,
            "case_tolerances": {
                case: {"tolerance_abs": t, "tolerance_rel": r, "reason": why}
                for case, (t, r, why) in self.case_tolerances.items()
            },
            "max_abs": self.max_abs,
            "max_rel": max((r.max_rel for r in self.rows), default=float("nan")),
            "heldout_top1_agreement": min(agreements) if agreements else None,
            "error": self.error,
            "refused": self.refused,
            "failures": self.failures(),
            "checks": [asdict(r) for r in self.rows],
        }


def compare_outputs(
    reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray], atol: float = 0.0, rtol: float = 0.0
) -> list[tuple[float, float, bool]]:
    """Per output: (max abs diff, max rel diff, every element within ``atol + rtol * |reference|``).
    Shapes must match exactly (:class:`ShapeMismatch` otherwise); a non-finite difference never passes."""
    if len(reference) != len(candidate):
        raise ShapeMismatch(f"{len(candidate)} outputs, expected {len(reference)}")
    results = []
    for ref, cand in zip(reference, candidate, strict=True):
        if ref.shape != cand.shape:
            raise ShapeMismatch(f"shape {list(cand.shape)}, expected {list(ref.shape)}")
        ref64 = ref.astype(np.float64)
        diff = np.abs(ref64 - cand.astype(np.float64))
        if not np.all(np.isfinite(diff)):
            results.append((float("inf"), float("inf"), False))
            continue
        rel = diff / np.maximum(np.abs(ref64), 1e-6)
        within = bool(np.all(diff <= atol + rtol * np.abs(ref64)))
        results.append((float(diff.max(initial=0.0)), float(rel.max(initial=0.0)), within))
    return results


class ShapeMismatch(ValueError):
    """An exported format's outputs differ in number or shape from the reference's."""


def check_format(
    format_name: str,
    expected: dict[str, list[np.ndarray]],
    runners: dict[str, Runner],
    cases: Sequence[CheckCase],
    output_names: Sequence[str],
    task: str,
    tolerance: float,
    tolerance_reason: str,
) -> FormatReport:
    """Compare every runner of one format against the reference outputs (``expected``: case name -> the eager
    model's outputs) on every case; keep every failure."""
    report = FormatReport(format_name, tolerance, tolerance_reason)
    for case in cases:
        if case.tolerance is not None or case.rtol:
            case_tolerance = tolerance if case.tolerance is None else case.tolerance
            report.case_tolerances[case.name] = (case_tolerance, case.rtol, case.tolerance_reason or "")
    for runner_name, runner in runners.items():
        for case in cases:
            report.rows += _check_case(runner_name, runner, case, expected[case.name], output_names, task, tolerance)
    return report


def _check_case(
    runner_name: str,
    runner: Runner,
    case: CheckCase,
    expected: list[np.ndarray],
    output_names: Sequence[str],
    task: str,
    tolerance: float,
) -> list[CheckRow]:
    """The rows of one runner on one case: one per output, or one row saying why nothing compared."""
    atol = tolerance if case.tolerance is None else case.tolerance
    shapes = [list(a.shape) for a in case.inputs]

    def row(output: str, failure: str | None, detail: str | None, **values: Any) -> CheckRow:
        return CheckRow(
            runner=runner_name,
            case=case.name,
            kind=case.kind,
            input_shapes=shapes,
            output=output,
            max_abs=values.get("max_abs", float("inf")),
            max_rel=values.get("max_rel", float("inf")),
            agreement=values.get("agreement"),
            tolerance=atol,
            passed=failure is None,
            failure=failure,
            detail=detail,
        )

    try:
        got = runner(case.inputs)
    except Exception as exc:  # a runtime that cannot run the case fails it, with the reason
        return [row("*", "runner-error", first_line(exc))]
    try:
        diffs = compare_outputs(expected, got, atol, case.rtol)
    except ShapeMismatch as exc:
        return [row("*", "shape", str(exc))]
    rows = []
    for index, (max_abs, max_rel, within) in enumerate(diffs):
        agree = get_task(task).agreement(expected[index], got[index]) if index == 0 else None
        failure = detail = None
        if not within:
            failure = "tolerance"
            detail = f"max abs diff {max_abs:.3g} > {atol:g}" + (f" + {case.rtol:g} * |reference|" if case.rtol else "")
        elif case.kind == "heldout" and agree not in (None, 1.0):
            failure, detail = "agreement", f"top-1 agreement {agree:.2%} < 100% on held-out inputs"
        rows.append(row(output_names[index], failure, detail, max_abs=max_abs, max_rel=max_rel, agreement=agree))
    return rows
