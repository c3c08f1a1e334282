"""``torchzoo export PATH.pt2 | MODULE:FACTORY``: your own model through the zoo's export path
(:mod:`torchzoo.export.package`), from what the command line declares; the check table as for a zoo model."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from torchzoo.cli.checks import print_checks, report_row
from torchzoo.cli.output import Output
from torchzoo.core.errors import UserInputError
from torchzoo.core.limits import MAX_LABELS, MAX_NPY_BYTES
from torchzoo.core.safe_io import read_input_file
from torchzoo.core.text_codec import printable

_FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def is_own_source(model: str) -> bool:
    """A saved program (``*.pt2``) or a ``MODULE:FACTORY`` reference, rather than a zoo model's name."""
    return model.endswith(".pt2") or ":" in model


@dataclass
class OwnModel:
    """What the command line says of a user's model (every field None / empty for a zoo model)."""

    task: str | None
    name: str | None
    labels: Path | None
    heldout: Path | None
    weights: Path | None
    inputs: list[str]
    dims: list[str]
    values: list[str]
    output: str | None
    output_names: list[str] | None

    def refuse_for_zoo(self) -> None:
        given = [f.name for f in fields(self) if getattr(self, f.name)]
        if given:
            option = "--" + given[0].rstrip("s").replace("_", "-")
            raise UserInputError(f"{option} goes with your own model (PATH.pt2 or MODULE:FACTORY), not a zoo model")


def read_labels(path: Path) -> list[str]:
    """One label per line (blank lines at the end ignored)."""
    text = read_input_file(path, 4 << 20, "--labels").decode("utf-8", errors="strict")
    labels = [line.strip() for line in text.splitlines()]
    while labels and not labels[-1]:
        labels.pop()
    if not labels or len(labels) > MAX_LABELS:
        raise UserInputError(f"--labels {printable(str(path))}: 1 to {MAX_LABELS} labels, one per line")
    return labels


def read_heldout(path: Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """An ``.npz`` of held-out inputs by input name, with their ``targets``."""
    data = read_input_file(path, MAX_NPY_BYTES, "--heldout")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except Exception as exc:
        raise UserInputError(f"--heldout {printable(str(path))}: not an .npz numpy reads ({exc})") from None
    if "targets" not in arrays:
        raise UserInputError(f"--heldout {printable(str(path))}: no 'targets' array beside the inputs")
    targets = arrays.pop("targets")
    return arrays, targets


def export_own(source: str, format: str, artifacts_dir: Path | None, out: Output, own: OwnModel) -> None:
    from torchzoo.core.paths import artifacts_root
    from torchzoo.export.package import ExportFailed
    from torchzoo.export.user_sources import package_factory, package_program

    common: dict[str, Any] = {
        "task": own.task or "tensor",
        "formats": format,
        "artifacts_dir": artifacts_root(artifacts_dir),
        "labels": read_labels(own.labels) if own.labels else None,
        "heldout": read_heldout(own.heldout) if own.heldout else None,
        "output": own.output,
        "output_names": own.output_names or None,
    }
    try:
        if source.endswith(".pt2"):
            if own.weights or own.inputs or own.dims:
                raise UserInputError("--weights, --input and --dim go with MODULE:FACTORY; a .pt2 carries its own")
            if not Path(source).is_file():
                raise UserInputError(f"{printable(source)}: no such file")
            ranges = dict(_range(v) for v in own.values) if own.values else None
            done = package_program(source, name=own.name, value_ranges_=ranges, **common)
        else:
            if not _FACTORY.match(source):
                raise UserInputError(
                    f"{printable(source, 80)!r}: expected PATH.pt2 or MODULE:FACTORY (e.g. my_models:build)"
                )
            if own.weights is None:
                raise UserInputError(f"{printable(source, 80)}: --weights STATE_DICT.pt is needed with MODULE:FACTORY")
            done = package_factory(
                source, own.weights, own.inputs, name=own.name, dims=own.dims, values=own.values, **common
            )
    except ExportFailed as failed:
        outcome = failed.outcome
        print_checks(
            out,
            [report_row(outcome.model, r, outcome.failure_report) for r in outcome.reports],
            "export + equivalence check",
        )
        return
    print_checks(
        out,
        [report_row(done.directory.name, r) for r in done.outcome.reports],
        f"export + equivalence check: {done.directory}",
    )


def _range(text: str) -> tuple[str, tuple[int, int]]:
    from torchzoo.export.user_inputs import parse_range

    name, low, high = parse_range(text, "--values")
    return name, (low, high)
