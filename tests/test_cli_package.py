"""The command line is one package: every command a plain function in its own module of ``torchzoo.cli``,
registered in ``cli/app.py`` and nowhere else, importable and callable in-process."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest
import typer

from torchzoo.cli.app import COMMANDS, app
from torchzoo.core.errors import ArtifactError

SRC = Path(__file__).resolve().parents[1] / "src" / "torchzoo"


def test_every_command_is_a_plain_function_of_its_own_module() -> None:
    registered = {info.name for info in app.registered_commands} | {g.name for g in app.registered_groups}
    assert registered == {name for name, _ in COMMANDS}
    for name, command in COMMANDS:
        functions = [i.callback for i in command.registered_commands] if isinstance(command, typer.Typer) else [command]
        for function in functions:
            assert inspect.isfunction(function), name
            module = function.__module__.rpartition(".")
            assert module[0] == "torchzoo.cli" and module[2].replace("_", "-") in (name, "list-models"), (name, module)


def test_no_command_is_defined_outside_the_cli_package() -> None:
    outside = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if "cli" not in path.relative_to(SRC).parts[:1] and re.search(r"\.command\(|add_typer\(", path.read_text())
    ]
    assert not outside, outside


def test_a_command_runs_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from torchzoo.cli.list_models import list_models
    from torchzoo.cli.predict import predict

    list_models(artifacts_dir=tmp_path, as_json=True)
    rows = json.loads(capsys.readouterr().out)
    names = {r["name"]: r for r in rows}
    assert names["names"]["status"] == "not trained" and names["wine"]["metric"] == "-"
    with pytest.raises(ArtifactError, match=r"no artifacts for 'nams' .* did you mean 'names'\?"):
        predict("nams", ["Rossi"], artifacts_dir=tmp_path)
