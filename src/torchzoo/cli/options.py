"""Typed options shared by the CLI's commands: choices built from the tables they come from, refused by the
parser with the closest choice, and the check that a command's extra is installed."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated

import typer

from torchzoo.core.artifact import FORMAT_FILES, VARIANT_FORMATS
from torchzoo.core.errors import UserInputError
from torchzoo.core.session import PROVIDER_CHOICES
from torchzoo.core.text_codec import did_you_mean

#: what the train extra brings, by import name
TRAIN_MODULES = ("torch", "onnx", "onnxscript", "matplotlib", "sklearn")
TRAIN_INSTALL = "pip install torch==2.13.0 && pip install 'torchzoo[train,cpu]'"
#: export destinations, not artifact files: never part of ``--format all``
DESTINATIONS = ("triton",)
FORMAT_CHOICES = (*FORMAT_FILES, "all", *DESTINATIONS)
PROFILE_CHOICES = ("full", "quick")


def require_train_extra(command: str) -> None:
    """A one-line error naming what to install when the ``train`` extra is missing."""
    missing = [name for name in TRAIN_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise UserInputError(
            f"'torchzoo {command}' needs the train extra ({', '.join(missing)} not installed): {TRAIN_INSTALL}"
        )


def choice(choices: Sequence[str]) -> Callable[[str], str]:
    """A typer ``parser`` that accepts one of ``choices`` and refuses anything else with the closest."""

    def parse(value: str) -> str:
        if value not in choices:
            raise typer.BadParameter(f"'{value}' is not one of {', '.join(choices)}{did_you_mean(value, choices)}")
        return value

    return parse


def _model_or_all(value: str) -> str:
    """A registered model name or ``all``; checking the name needs the registry, so the train extra."""
    if value != "all":
        require_train_extra("this command")
        from torchzoo.train import registry

        registry.get(value)  # a one-line error with the closest name
    return value


def _metavar(choices: Sequence[str]) -> str:
    return "[" + "|".join(choices) + "]"


ModelOrAll = Annotated[
    str, typer.Argument(parser=_model_or_all, help="A model name from 'torchzoo list', or 'all'.", show_default=True)
]
ArtifactOrAll = Annotated[
    str, typer.Argument(help="An exported model under the artifact root (the zoo's or your own), or 'all'.")
]
ExportSource = Annotated[
    str,
    typer.Argument(
        help="A zoo model from 'torchzoo list' or 'all'; your own model: PATH.pt2 (torch.export.save) or "
        "MODULE:FACTORY (with --weights and --input); with --format triton, any exported model."
    ),
]
FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format",
        "-f",
        parser=choice(FORMAT_CHOICES),
        metavar=_metavar(FORMAT_CHOICES),
        help="Export format (default: onnx for a zoo model, all for your own); triton: add the ONNX graph to a "
        "Triton model repository (--repository).",
    ),
]
ProviderOpt = Annotated[
    str,
    typer.Option(
        "--provider",
        parser=choice(PROVIDER_CHOICES),
        metavar=_metavar(PROVIDER_CHOICES),
        help="onnxruntime execution provider; auto prefers CUDA and falls back to CPU.",
    ),
]
VariantOpt = Annotated[
    str,
    typer.Option(
        "--variant",
        parser=choice(tuple(VARIANT_FORMATS)),
        metavar=_metavar(tuple(VARIANT_FORMATS)),
        help="Which graph: fp32 (model.onnx) or a published int8 / fp16 variant (see the manifest's variants).",
    ),
]
ProfileOpt = Annotated[
    str,
    typer.Option(
        "--profile",
        parser=choice(PROFILE_CHOICES),
        metavar=_metavar(PROFILE_CHOICES),
        help="full: the tutorial's recipe; quick: minutes, for CI.",
    ),
]
DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Dataset root (default: $TORCHZOO_DATA, else ./data).")
]
ArtifactsDir = Annotated[
    Path | None, typer.Option("--artifacts-dir", help="Artifact root (default: $TORCHZOO_ARTIFACTS or ./artifacts).")
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Complete, machine-readable JSON on stdout.")]
ModelOrPath = Annotated[str, typer.Argument(help="Model name (artifacts/<model>) or a path to an artifact directory.")]
TopK = Annotated[int, typer.Option("--top-k", "-k", min=1, help="How many labels to show.")]
Threshold = Annotated[float, typer.Option(min=0.0, max=1.0, help="Binary/multi-label threshold.")]
