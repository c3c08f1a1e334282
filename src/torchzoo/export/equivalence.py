"""The equivalence checker: run the eager model and an exported format on the same inputs, compare.

Every (runner, case, output) gets a row with max abs / max rel difference and top-1 agreement; a format
passes only if every row is within tolerance and predictions agree on every held-out input. Unlike
exporters that only warn, a failure here is a hard error for the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

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


@dataclass
class FormatReport:
    format: str
    tolerance: float
    tolerance_reason: str
    rows: list[CheckRow] = field(default_factory=list)
    error: str | None = None
    #: cases checked at another tolerance than the format's: case -> (abs tolerance, rel tolerance, why)
    case_tolerances: dict[str, tuple[float, float, str]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.error is None and bool(self.rows) and all(r.passed for r in self.rows)

    @property
    def max_abs(self) -> float:
        return max((r.max_abs for r in self.rows), default=float("nan"))

    def worst(self) -> CheckRow | None:
        failing = [r for r in self.rows if not r.passed]
        return max(failing or self.rows, key=lambda r: r.max_abs, default=None)

    def summary(self) -> str:
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
            "checks": [asdict(r) for r in self.rows],
        }


def agreement(task: str, reference: np.ndarray, candidate: np.ndarray) -> float | None:
    """Fraction of samples whose prediction (not just value) is the same; None for regression."""
    if task == "classification":
        return float(np.mean(reference.argmax(axis=-1) == candidate.argmax(axis=-1)))
    if task in ("binary", "multilabel"):
        same = (reference > 0.5) == (candidate > 0.5)
        return float(np.mean(same.reshape(len(same), -1).all(axis=1)))
    return None


def compare_outputs(
    reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray], atol: float = 0.0, rtol: float = 0.0
) -> list[tuple[float, float, bool]]:
    """Per output: (max abs diff, max rel diff, every element within ``atol + rtol * |reference|``).
    Shapes must match exactly; a non-finite difference never passes."""
    results = []
    for ref, cand in zip(reference, candidate, strict=True):
        if ref.shape != cand.shape:
            raise ValueError(f"shape mismatch: reference {ref.shape} vs exported {cand.shape}")
        ref64 = ref.astype(np.float64)
        diff = np.abs(ref64 - cand.astype(np.float64))
        if not np.all(np.isfinite(diff)):
            results.append((float("inf"), float("inf"), False))
            continue
        rel = diff / np.maximum(np.abs(ref64), 1e-6)
        within = bool(np.all(diff <= atol + rtol * np.abs(ref64)))
        results.append((float(diff.max(initial=0.0)), float(rel.max(initial=0.0)), within))
    return results


def check_format(
    format_name: str,
    reference: Runner,
    runners: dict[str, Runner],
    cases: Sequence[CheckCase],
    output_names: Sequence[str],
    task: str,
    tolerance: float,
    tolerance_reason: str,
) -> FormatReport:
    """Compare every runner of one format against the reference on every case."""
    report = FormatReport(format_name, tolerance, tolerance_reason)
    expected = {case.name: reference(case.inputs) for case in cases}
    for runner_name, runner in runners.items():
        for case in cases:
            try:
                got = runner(case.inputs)
                case_tolerance = tolerance if case.tolerance is None else case.tolerance
                diffs = compare_outputs(expected[case.name], got, case_tolerance, case.rtol)
            except Exception as exc:  # a runtime that cannot run the case fails the check, with the reason
                report.error = f"{runner_name} on {case.name}: {str(exc).splitlines()[0] if str(exc) else exc!r}"
                return report
            if case.tolerance is not None or case.rtol:
                report.case_tolerances[case.name] = (case_tolerance, case.rtol, case.tolerance_reason or "")
            for index, (max_abs, max_rel, within) in enumerate(diffs):
                agree = agreement(task, expected[case.name][index], got[index]) if index == 0 else None
                ok = within and (case.kind != "heldout" or agree in (None, 1.0))
                report.rows.append(
                    CheckRow(
                        runner=runner_name,
                        case=case.name,
                        kind=case.kind,
                        input_shapes=[list(a.shape) for a in case.inputs],
                        output=output_names[index],
                        max_abs=max_abs,
                        max_rel=max_rel,
                        agreement=agree,
                        tolerance=case_tolerance,
                        passed=ok,
                    )
                )
    return report
