"""Write docs/cli.md: the ``--help`` of every torchzoo command and sub-command, read from the typer app.

Run from the repository root after changing a command, an option or a help text::

    python docs/gen_cli_reference.py

``tests/test_docs.py`` fails when the committed docs/cli.md differs from what this writes. The output is
deterministic: a fixed width of 100 columns, click's plain formatter (the app sets no rich markup), and no
TORCHZOO_* variable of the environment that writes it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

WIDTH = 100
OUT = Path(__file__).resolve().with_name("cli.md")
COMMAND = "python docs/gen_cli_reference.py"

HEADER = f"""# CLI reference

Every command of `torchzoo` and its `--help`, as the command line prints it. This page is generated
from the typer app (`from torchzoo.cli import app`) by `{COMMAND}`; a test fails when
it is stale. Every command takes `--json` (complete, machine-readable JSON on stdout); errors are one line on stderr,
exit code 2 for bad input or a bad artifact, 1 for an internal error or a failed check.
"""


def render() -> str:
    """The page, from the app as it is now."""
    for name in [n for n in os.environ if n.startswith("TORCHZOO_")]:
        del os.environ[name]
    os.environ["COLUMNS"] = str(WIDTH)

    import typer.main

    from torchzoo.cli import app

    parts = [HEADER]

    def walk(command, path: list[str], parent) -> None:
        ctx = command.context_class(
            command, info_name=path[-1], parent=parent, terminal_width=WIDTH, max_content_width=WIDTH
        )
        text = "\n".join(line.rstrip() for line in command.get_help(ctx).splitlines()).strip()
        parts.append(f"## {' '.join(path)}\n\n```text\n{text}\n```\n")
        if hasattr(command, "list_commands"):
            for name in command.list_commands(ctx):
                walk(command.get_command(ctx, name), [*path, name], ctx)

    walk(typer.main.get_command(app), ["torchzoo"], None)
    return "\n".join(parts)


def main() -> None:
    OUT.write_text(render())
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
