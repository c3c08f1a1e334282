"""CLI commands that live outside ``torchzoo.cli``: each module here defines ``register(app)``, which adds
its typer command(s) to the one app. Modules import only typer and the standard library at top level;
a command imports its room inside its body, so ``torchzoo --help`` stays fast and torch-free."""

from __future__ import annotations

import importlib

import typer

#: modules under torchzoo.commands, in the order their commands appear in ``--help``
MODULES: tuple[str, ...] = ("serve", "embed", "sign", "data", "predict_batch")


def register_all(app: typer.Typer) -> None:
    for name in MODULES:
        importlib.import_module(f"torchzoo.commands.{name}").register(app)
