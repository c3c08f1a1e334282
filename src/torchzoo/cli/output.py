"""The CLI's one output layer: every command hands it data, and it decides how that data is shown.

- ``--json``: the data as JSON on stdout, complete, always valid (no bare NaN or Infinity).
- stdout is a terminal: rich tables; cells are folded, never cut, and never parsed as markup.
- stdout is a pipe or a file: plain text tables, every cell in full on one line (for scripts and logs).

Cell text is shown escaped: control characters from user input (names, file names, CSV cells) are
written as ``\\x1b``-style escapes, so nothing a user typed can drive the terminal.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from torchzoo.core.text_codec import printable

#: a cell: its text, or (text, rich style) where a style helps a person on a terminal
Cell = str | tuple[str, str]


def _shown(text: object) -> str:
    """``text`` whole, with every control and format character escaped."""
    return printable(str(text), limit=None)


def _finite(obj: Any) -> Any:
    """JSON-safe: non-finite floats become null (they are never valid JSON numbers)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def to_json(obj: Any) -> str:
    return json.dumps(_finite(obj), indent=2, allow_nan=False, default=str)


class Output:
    """Where one command's results go. ``json_mode`` comes from the command's ``--json`` flag."""

    def __init__(self, json_mode: bool = False) -> None:
        self.json_mode = json_mode
        self.terminal = sys.stdout.isatty()
        self.console = Console(soft_wrap=not self.terminal, highlight=False)
        self.err = Console(stderr=True, soft_wrap=True, highlight=False)

    def result(self, data: Any, render: Callable[[], None]) -> None:
        """The command's result: ``data`` as JSON with ``--json``, else ``render()`` for people."""
        if self.json_mode:
            sys.stdout.write(to_json(data) + "\n")
        else:
            render()

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[Cell]]) -> None:
        if self.terminal:
            table = Table(title=_shown(title))
            for column in columns:
                table.add_column(_shown(column), overflow="fold")
            for row in rows:
                table.add_row(*(_rich_cell(cell) for cell in row))
            self.console.print(table)
            return
        self.text(_plain_table(title, columns, [[_text(cell) for cell in row] for row in rows]))

    def text(self, text: str) -> None:
        """Plain text on stdout, exactly as given (no markup, no wrapping)."""
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()

    def note(self, text: str) -> None:
        """A side remark for a person (provider chosen, files written): stderr, so stdout stays data."""
        self.err.print(Text(_shown(text)))


def _text(cell: Cell) -> str:
    return _shown(cell[0] if isinstance(cell, tuple) else cell)


def _rich_cell(cell: Cell) -> Text:
    if isinstance(cell, tuple):
        return Text(_shown(cell[0]), style=cell[1])
    return Text(_shown(cell))


def _plain_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart, each as wide as its longest cell; nothing is cut."""
    header = [_shown(c) for c in columns]
    widths = [max([len(header[i])] + [len(row[i]) for row in rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

    body = [_shown(title), line(header), line(["-" * w for w in widths]), *(line(row) for row in rows)]
    return "\n".join(body) + "\n"


def fmt_metric(metrics: dict[str, Any] | None) -> str:
    """The first numeric metric as ``name=value`` (4 significant digits), or ``-``."""
    for key, value in (metrics or {}).items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            return f"{key}={value:.4g}"
    return "-"


def status_cell(passed: bool, text: str = "") -> Cell:
    """A status cell: green ``ok`` (or ``text``) when it passed, else red ``FAIL`` (or ``text``)."""
    return (text or "ok", "green") if passed else (text or "FAIL", "red")
