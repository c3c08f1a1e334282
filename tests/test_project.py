"""The project's promises about itself: the README's commands are what CI runs; the registry is whole."""

from __future__ import annotations

import re

from conftest import ROOT, run_cli


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

    for spec in registry.MODELS:
        family = spec.load_family()
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
