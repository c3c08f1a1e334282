"""Every private torch API torchzoo uses, in one place, pinned to the torch it was written against.

torch 2.13 has no public API for these yet:

- ``torch.export._patches.register_gru_while_loop_decomposition`` / ``register_lstm_while_loop_decomposition``:
  context managers that make ``torch.export`` lower ``nn.GRU`` / ``nn.LSTM`` to a ``while_loop`` instead of
  unrolling it, so the sequence axis stays dynamic (what ``torch.onnx.export(dynamo=True)`` uses itself;
  pytorch#115092). There is no such decomposition for ``nn.RNN`` (tanh) in 2.13.
- ``torch._higher_order_ops.scan.scan``: a loop ``torch.export`` keeps as one ``scan`` node (exported to ONNX
  as ``Scan``), for the names model's per-letter recurrence.
- ``torch._dynamo.reset``: forgets what earlier exports in this process traced. Without it, a ``.pt2``
  export of ``names-gru`` (dynamic sequence) after one of ``mnist-gru`` (28 steps) in the same process fails
  with "Constraints violated (seq) ... 28 != seq": a cached trace of ``nn.GRU`` is reused.

Importing this module checks that each exists and says which is missing; ``tests/test_torch_private.py``
fails loudly when torch moves to another minor version, so each use is re-checked then.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator
from typing import Any

import torch

#: the torch minor version these private APIs were checked against
PINNED_TORCH = "2.13"
_REQUIRED = {
    "torch.export._patches": ("register_gru_while_loop_decomposition", "register_lstm_while_loop_decomposition"),
    "torch._higher_order_ops.scan": ("scan",),
    "torch._dynamo": ("reset",),
}


def _resolve() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for module_name, names in _REQUIRED.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ImportError(
                f"torch {torch.__version__} has no {module_name} (torchzoo's private-API shim is pinned to torch "
                f"{PINNED_TORCH}; see torchzoo/train/torch_private.py)"
            ) from exc
        for name in names:
            if not callable(getattr(module, name, None)):
                raise ImportError(
                    f"torch {torch.__version__} has no {module_name}.{name} (torchzoo's private-API shim is pinned "
                    f"to torch {PINNED_TORCH}; see torchzoo/train/torch_private.py)"
                )
            found[name] = getattr(module, name)
    return found


_API = _resolve()
scan: Callable[..., Any] = _API["scan"]


@contextlib.contextmanager
def rnn_while_loop_decompositions() -> Iterator[None]:
    """Inside: ``torch.export`` keeps ``nn.GRU`` / ``nn.LSTM`` as a while-loop over a dynamic sequence axis."""
    with _API["register_gru_while_loop_decomposition"](), _API["register_lstm_while_loop_decomposition"]():
        yield


def reset_traces() -> None:
    """Forget every trace cached by earlier exports in this process (each export starts clean)."""
    _API["reset"]()
