"""The check table that ``export`` and ``verify`` print: one row per model and format, then every failing row;
exit 1 if any failed (a refused int8/fp16 variant is not published, and not a failure)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from torchzoo.cli.output import Output, status_cell


def error_row(model: str, format: str, error: str) -> dict[str, Any]:
    return {"model": model, "format": format, "passed": False, "error": error, "failures": [error]}


def report_row(model: str, report: Any, failure_report: Path | None = None) -> dict[str, Any]:
    heldout = [r for r in report.rows if r.kind == "heldout"]
    random = [r for r in report.rows if r.kind == "random"]
    agreements = [r.agreement for r in heldout if r.agreement is not None]
    return {
        "model": model,
        "format": report.format,
        "heldout_max_abs": max((r.max_abs for r in heldout), default=None),
        "random_max_abs": max((r.max_abs for r in random), default=None),
        "tolerance": report.tolerance,
        "case_tolerance": max((t for t, _, _ in report.case_tolerances.values()), default=None),
        "case_rtol": max((r for _, r, _ in report.case_tolerances.values()), default=None),
        "heldout_top1_agreement": min(agreements) if agreements else None,
        "runners": len({r.runner for r in report.rows}),
        # a refused int8/fp16 variant is not published and not a failure (torchzoo.export.variants)
        "refused": report.refused,
        "passed": report.acceptable,
        "error": None if report.passed else report.summary(),
        "failures": report.failures(),
        "failure_report": str(failure_report) if failure_report and not report.passed else None,
    }


def _verdict(check: dict[str, Any]) -> str:
    if check.get("refused"):
        return "refused"
    return "pass" if check["passed"] else f"FAIL ({len(check['failures'])})"


def print_checks(out: Output, checks: list[dict[str, Any]], title: str) -> None:
    """The per model x format check table (or JSON), then every failing row; exit 1 if any failed."""
    failed = [c for c in checks if not c["passed"]]

    def num(value: float | None) -> str:
        return "-" if value is None else f"{value:.1e}"

    def render() -> None:
        rows = []
        for c in checks:
            agree = c.get("heldout_top1_agreement")
            wider = "*" if c.get("case_tolerance") or c.get("case_rtol") else ""
            rows.append(
                (
                    c["model"],
                    c["format"],
                    num(c.get("heldout_max_abs")),
                    num(c.get("random_max_abs")),
                    num(c.get("tolerance")) + wider,
                    "-" if agree is None else f"{agree:.0%}" if agree in (0.0, 1.0) else f"{agree:.2%}",
                    status_cell(c["passed"], _verdict(c)),
                )
            )
        columns = ("model", "format", "held-out max|diff|", "random max|diff|", "tol", "top-1 agree", "check")
        out.table(title, columns, rows)
        if any(c.get("case_tolerance") or c.get("case_rtol") for c in checks):
            out.text("* some cases have a wider tolerance, justified in equivalence.json (case_tolerances)")
        for c in checks:
            if c.get("refused"):
                out.text(f"refused, not published: {c['model']} {c['format']}: {c['refused']}")
        for c in failed:
            for failure in c["failures"]:
                out.text(f"FAIL {c['model']}: {failure}")
        for path in sorted({c["failure_report"] for c in failed if c.get("failure_report")}):
            out.text(f"nothing published; report: {path}")

    out.result({"passed": not failed, "checks": checks}, render)
    if failed:
        raise typer.Exit(1)
