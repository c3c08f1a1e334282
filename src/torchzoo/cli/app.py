"""The ``torchzoo`` typer app and its error contract: every command of :data:`COMMANDS` is a plain function in
its own module of this package, registered here and nowhere else. Usage errors, torchzoo's errors and internal
errors all become one line on stderr (JSON on stdout with ``--json``) and an exit code: 2 for bad input, 1 for a
failure, 130 for an interruption; ``TORCHZOO_DEBUG=1`` adds the traceback of an internal error."""

from __future__ import annotations

import os
import sys
import traceback

import typer

from torchzoo.cli import (
    bench,
    data,
    embed,
    export,
    list_models,
    predict,
    predict_batch,
    report,
    serve,
    sign,
    train,
    verify,
)
from torchzoo.cli.output import to_json
from torchzoo.core.errors import TorchzooError, first_line

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Train the PyTorch tutorial models, export them with proven equivalence, serve them with onnxruntime.",
)

#: the commands, in the order ``--help`` lists them: (name, function, or the typer app of its sub-commands)
COMMANDS = (
    ("train", train.train),
    ("export", export.export),
    ("verify", verify.verify),
    ("predict", predict.predict),
    ("bench", bench.bench),
    ("report", report.report),
    ("list", list_models.list_models),
    ("serve", serve.serve),
    ("embed", embed.embed),
    ("sign", sign.sign),
    ("data", data.app),
    ("predict-batch", predict_batch.predict_batch),
)
for _name, _command in COMMANDS:
    if isinstance(_command, typer.Typer):  # a command with sub-commands
        app.add_typer(_command, name=_name)
    else:
        app.command(_name)(_command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, then exit with the code the contract above gives."""
    args = sys.argv[1:] if argv is None else argv
    json_mode = "--json" in args
    try:
        code = app(args=args, prog_name="torchzoo", standalone_mode=False)
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.Abort:
        _report_error("aborted", 130, json_mode)
        code = 130
    except TorchzooError as exc:
        _report_error(str(exc), exc.exit_code, json_mode)
        code = exc.exit_code
    except typer.TyperException as exc:  # usage errors: unknown option, bad choice, missing argument
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare 'torchzoo': the help is the answer
            sys.stdout.write(exc.format_message() + "\n")
        else:
            _report_error(exc.format_message(), exc.exit_code, json_mode)
        code = exc.exit_code
    except (KeyboardInterrupt, BrokenPipeError):
        code = 130
    except Exception as exc:  # internal error: still one line, never a traceback unless asked
        if os.environ.get("TORCHZOO_DEBUG") == "1":
            traceback.print_exc()
        _report_error(f"internal error: {first_line(exc)} (TORCHZOO_DEBUG=1 shows the traceback)", 1, json_mode)
        code = 1
    sys.exit(code if isinstance(code, int) else 0)


def _report_error(message: str, code: int, json_mode: bool) -> None:
    message = " ".join(message.split())
    if json_mode:
        sys.stdout.write(to_json({"error": message, "exit_code": code}) + "\n")
    else:
        sys.stderr.write(f"torchzoo: error: {message}\n")
