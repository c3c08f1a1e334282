"""The failure path of export: every failing (format, runner, case, output) is named, nothing is published."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from support import ROOT, Zoo, cli_env

# Export with the ONNX writer replaced by one that perturbs one weight of the graph it wrote.
PERTURBED_EXPORT = """
import dataclasses, sys
import numpy as np, onnx
from onnx import numpy_helper
from torchzoo.cli import main
from torchzoo.export import formats

original = formats.FORMATS["onnx"]

def write_perturbed(ctx, target):
    info = original.write(ctx, target)
    model = onnx.load(str(target))
    weight = max(model.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    values = numpy_helper.to_array(weight).copy()
    values.flat[0] += 1.0
    weight.CopyFrom(numpy_helper.from_array(values, weight.name))
    onnx.save(model, str(target))
    return info

formats.FORMATS["onnx"] = dataclasses.replace(original, write=write_perturbed)
main(sys.argv[1:])
"""


def _hashes(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir()) if p.is_file()}


def _export(root: Path, *extra: str) -> subprocess.CompletedProcess:
    args = ["export", "names", "--format", "all", "--artifacts-dir", str(root), *extra]
    return subprocess.run(
        [sys.executable, "-c", PERTURBED_EXPORT, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=900,
        env=cli_env(),
    )


def test_a_failing_export_names_every_failing_row_and_publishes_nothing(zoo: Zoo) -> None:
    root = zoo.exported("names")
    live = root / "names"
    before = _hashes(live)

    result = _export(root)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads((root / ".failed" / "names.equivalence.json").read_text())
    onnx = report["formats"]["onnx"]
    assert onnx["passed"] is False
    failing = [c for c in onnx["checks"] if not c["passed"]]
    runners = {c["runner"] for c in failing}
    assert len(runners) == 4 and len(failing) >= 8  # every optimization level, several cases each
    printed = [line for line in result.stdout.splitlines() if line.startswith("FAIL names: onnx / ")]
    assert len(printed) == len(failing) == len(onnx["failures"])
    for check in failing:
        assert check["failure"] == "tolerance" and check["max_abs"] > check["tolerance"]
        where = f"FAIL names: onnx / {check['runner']} / {check['case']} / {check['output']}: tolerance: max abs diff"
        assert sum(line.startswith(where) for line in printed) == 1, where
    # the other formats were still written and checked, and passed
    assert report["formats"]["state_dict"]["passed"] and report["formats"]["torchscript"]["passed"]
    assert "nothing published" in result.stdout
    assert _hashes(live) == before


def test_a_failing_export_reports_every_row_as_json(zoo: Zoo) -> None:
    root = zoo.exported("names")
    result = _export(root, "--json")
    assert result.returncode == 1
    body = json.loads(result.stdout)
    assert body["passed"] is False
    by_format = {c["format"]: c for c in body["checks"]}
    assert by_format["state_dict"]["passed"] and not by_format["onnx"]["passed"]
    assert len(by_format["onnx"]["failures"]) >= 8 and by_format["onnx"]["failure_report"].endswith(
        "names.equivalence.json"
    )
