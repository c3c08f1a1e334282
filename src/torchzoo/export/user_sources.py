"""Your own model from where it lives: an ExportedProgram saved with ``torch.export.save``
(:func:`package_program`: its graph, weights, example inputs and dynamic dims travel in the file; the eager
reference is ``program.module()``) or a factory in your importable code with a state_dict
(:func:`package_factory`: ``MODULE:FACTORY``, the inputs declared as ``NAME:DTYPE[DIMS]``). Both end in
:func:`torchzoo.export.package.package_module`, as :func:`torchzoo.package` does."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from torchzoo.core.errors import UserInputError, first_line
from torchzoo.export.context import quiet
from torchzoo.export.package import Packaged, check_name, package_module
from torchzoo.export.user_inputs import BATCH, declared_inputs


def _program_dims(program: Any) -> tuple[list[str], tuple[torch.Tensor, ...] | None, dict[str, dict[int, Any]]]:
    """A saved program's input names, its example inputs (when saved with it) and its dynamic dims, named:
    the batch (axis 0) ``batch``, any other ``<input>_<axis>`` where it first appears, with the program's ranges."""
    signature = program.graph_signature
    user = list(signature.user_inputs)
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    named: dict[str, str] = {}
    dynamic: dict[str, dict[int, Any]] = {}
    for input_name in user:
        value = placeholders[input_name].meta.get("val")
        if not isinstance(value, torch.Tensor):
            raise UserInputError(f"input {input_name!r} of the program is not a tensor")
        for axis, size in enumerate(value.shape):
            if isinstance(size, torch.SymInt):
                symbol = str(size)
                dim = named.setdefault(symbol, BATCH if axis == 0 else f"{input_name}_{axis}")
                ranges = {str(k): v for k, v in program.range_constraints.items()}.get(symbol)
                low = max(1, int(ranges.lower)) if ranges is not None else 1
                high = _finite(getattr(ranges, "upper", None))
                dynamic.setdefault(input_name, {})[axis] = (dim, low, high)
    examples = None
    if program.example_inputs is not None:
        args, kwargs = program.example_inputs
        if not kwargs:
            examples = tuple(args)
    return user, examples, dynamic


def _finite(bound: Any) -> int | None:
    """A range's upper bound as an int; None where it is unbounded (torch's ``int_oo``)."""
    try:
        value = int(bound)
    except (TypeError, ValueError, OverflowError, AttributeError):
        return None
    return value if value < 1 << 62 else None


def package_program(path: str | Path, name: str | None = None, task: str = "tensor", **options: Any) -> Packaged:
    """An ExportedProgram saved with ``torch.export.save``: its graph, weights and dynamic dims travel in the file;
    the eager reference is ``program.module()``. ``options``: as :func:`package` (no ``dynamic_dims``: the
    program's are used)."""
    path = Path(path)
    name = name or path.stem
    check_name(name)
    try:
        with quiet():
            program = torch.export.load(str(path))
    except Exception as exc:
        raise UserInputError(
            f"{path}: not an ExportedProgram saved with torch.export.save ({first_line(exc)})"
        ) from None
    names, examples, dynamic = _program_dims(program)
    for input_name in names:
        dynamic.setdefault(input_name, {}).setdefault(0, BATCH)
    if examples is None:
        raise UserInputError(
            f"{path}: the program holds no example inputs; save it with torch.export.save from torch >= 2.5"
        )
    ranges = options.pop("value_ranges_", None)
    origin = {"kind": "pt2", "file": path.name}
    return package_module(
        program.module(), examples, names, dynamic, ranges, name, task, origin, options, program=program
    )


def package_factory(
    target: str,
    weights: str | Path,
    inputs: Sequence[str],
    name: str | None = None,
    task: str = "tensor",
    dims: Sequence[str] = (),
    values: Sequence[str] = (),
    **options: Any,
) -> Packaged:
    """``MODULE:FACTORY``: a callable in the user's importable code that returns the module; ``weights``: its
    state_dict (loaded with ``weights_only=True``); ``inputs``: ``NAME:DTYPE[DIMS]`` per forward argument, with
    ``dims`` (``NAME=MIN:MAX``) and ``values`` (``NAME=LOW:HIGH``, required for integer inputs)."""
    module_name, _, factory_name = target.partition(":")
    name = name or f"{module_name.rsplit('.', 1)[-1]}-{factory_name}".lower().replace("_", "-")
    check_name(name)
    dynamic, examples, names, ranges = declared_inputs(inputs, dims, values)
    model = _build(module_name, factory_name, target)
    try:
        state = torch.load(str(weights), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserInputError(f"--weights {weights}: no such file") from None
    except Exception as exc:
        raise UserInputError(
            f"--weights {weights}: not a state_dict torch.load(weights_only=True) reads ({first_line(exc)})"
        ) from None
    if not isinstance(state, Mapping):
        raise UserInputError(f"--weights {weights}: holds a {type(state).__name__}, not a state_dict")
    try:
        model.load_state_dict(state)
    except Exception as exc:
        detail = " ".join(str(exc).split())[:300]
        raise UserInputError(f"--weights {weights}: the weights do not fit {target} ({detail})") from None
    model.eval()
    origin = {"kind": "factory", "factory": target, "weights": Path(weights).name}
    return package_module(model, examples, names, dynamic, ranges, name, task, origin, options, real_examples=False)


def _build(module_name: str, factory_name: str, target: str) -> nn.Module:
    if not module_name or not factory_name:
        raise UserInputError(f"{target!r}: expected MODULE:FACTORY, e.g. my_package.models:build")
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # the user's code in the working directory, as python -m finds it
    try:
        factory = getattr(importlib.import_module(module_name), factory_name)
    except (ImportError, AttributeError) as exc:
        raise UserInputError(f"{target}: cannot import it ({first_line(exc)})") from None
    try:
        model = factory()
    except Exception as exc:
        raise UserInputError(f"{target}: the factory raised {first_line(exc)}") from None
    if not isinstance(model, nn.Module):
        raise UserInputError(f"{target}: the factory returned a {type(model).__name__}, not a torch.nn.Module")
    return model
