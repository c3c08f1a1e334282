"""The ``torchzoo`` command line: the typer app (:mod:`torchzoo.cli.app`), one module per command, the shared
options (:mod:`torchzoo.cli.options`) and the one output layer (:mod:`torchzoo.cli.output`). Every command
imports its room lazily, so ``predict`` never imports torch or training code and starts fast."""

from torchzoo.cli.app import app, main

__all__ = ["app", "main"]
