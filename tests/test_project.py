"""The project's promises about itself: the README's commands are what CI runs; the registry is whole."""

from __future__ import annotations

import re
from pathlib import Path

from support import ROOT, run_cli


def _readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    setup = readme.split("## Set-up")[1].split("\n## ")[0]
    return re.findall(r"```bash\n(.+?)\n```", setup, flags=re.S)


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one() -> None:
    commands = _readme_commands()
    assert len(commands) == 2
    main_job, tests = commands
    assert "pip install torch==2.13.0 && pip install -e" in main_job  # torch pinned and installed first
    assert main_job.rstrip().endswith("torchzoo predict names Rossi")
    assert tests.rstrip().endswith("pytest")
    ci = (ROOT / ".ci" / "run").read_text()
    assert tests in ci.splitlines()


def test_every_registered_model_has_a_family_module() -> None:
    from torchzoo.train import registry

    for spec in registry.models():
        family = spec.family
        assert family.inputs and family.outputs, spec.name


def test_unknown_model_suggests_the_closest() -> None:
    result = run_cli("train", "mnist-lstn")
    assert result.returncode == 2
    assert result.stderr.strip() == "torchzoo: error: unknown model 'mnist-lstn'; did you mean 'mnist-lstm'?"


def test_list_shows_every_model() -> None:
    from torchzoo.train import registry

    result = run_cli("list", "--json")
    assert result.returncode == 0
    import json

    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == registry.names()


def test_list_on_a_pipe_prints_every_name_in_full() -> None:
    from torchzoo.train import registry

    result = run_cli("list", env={"COLUMNS": "40"})  # stdout is a pipe here, and a narrow one
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "…" not in result.stdout
    for spec in registry.models():
        row = next(line for line in lines if line.split()[:1] == [spec.name])
        assert spec.dataset in row  # the longest cells stay whole, on the model's own line


def test_every_command_has_json() -> None:
    import typer.main

    from torchzoo.cli import app

    command = typer.main.get_command(app)
    missing = []
    for name, sub in command.commands.items():
        subcommands = getattr(sub, "commands", None)
        for leaf_name, leaf in (subcommands or {name: sub}).items():
            if "--json" not in {opt for param in leaf.params for opt in getattr(param, "opts", [])}:
                missing.append(leaf_name)
    assert not missing, missing


def test_a_typo_in_a_choice_is_refused_with_the_closest() -> None:
    from torchzoo.cli.options import FORMAT_CHOICES

    result = run_cli("export", "names", "--format", "onxx")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"torchzoo: error: Invalid value for '--format' / '-f': 'onxx' is not one of "
        f"{', '.join(FORMAT_CHOICES)}; did you mean 'onnx'?"
    ]
    assert "[" + "|".join(FORMAT_CHOICES) + "]" in " ".join(
        run_cli("export", "--help", env={"COLUMNS": "300"}).stdout.split()
    )


BROKEN_PREDICT = """
import sys, torchzoo.serve_cli
def broken(*args, **kwargs):
    raise ZeroDivisionError("a bug, not bad input")
torchzoo.serve_cli.load = broken
from torchzoo.cli import main
main(["predict", sys.argv[1], "Rossi"])
"""


def test_internal_errors_are_one_line_unless_debugging(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    def run(env: dict[str, str]) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", BROKEN_PREDICT, str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **env},
        )

    plain = run({})
    assert plain.returncode == 1
    assert plain.stderr.splitlines() == [
        "torchzoo: error: internal error: ZeroDivisionError: a bug, not bad input "
        "(TORCHZOO_DEBUG=1 shows the traceback)"
    ]
    debug = run({"TORCHZOO_DEBUG": "1"})
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
