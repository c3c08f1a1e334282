"""The whole zoo on the quick profile: every registered model trains, exports to every format, and
``torchzoo verify all`` re-checks all of them from the files on disk."""

from __future__ import annotations

import json

import pytest

from torchzoo.train import registry

from support import Zoo, run_cli


@pytest.mark.slow
def test_every_model_exports_and_verifies(zoo: Zoo) -> None:
    for name in registry.names():
        zoo.exported(name)  # trained and exported once per session (shared with the other tests)
    result = run_cli("verify", "all", "--json", "--artifacts-dir", str(zoo.root))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    report = json.loads(result.stdout)
    checked = {(r["model"], r["format"]) for r in report["checks"] if r["passed"]}
    assert {(m, f) for m in registry.names() for f in ("state_dict", "torchscript", "pt2", "onnx")} <= checked
    listed = json.loads(run_cli("list", "--json", "--artifacts-dir", str(zoo.root)).stdout)
    assert all(row["status"].startswith("exported") for row in listed)
