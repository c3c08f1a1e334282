"""The one onnxruntime session factory: options, graph optimization level and execution provider.

Used by the runtime, the equivalence checker and the bench, so a graph is always run the same way.
``auto`` prefers CUDA and falls back to CPU with a one-line notice; ``cuda`` without CUDA is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torchzoo.core.errors import TorchzooError, UserInputError

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
PROVIDER_CHOICES = ("auto", *PROVIDERS)
OPTIMIZATION_LEVELS = ("disabled", "basic", "extended", "all")
#: whether onnxruntime's intra-op threads spin-wait for work after a run: lowest latency for runs back to back;
#: ``torchzoo serve`` turns it off, since between requests the spinning takes the CPU the event loop needs
ALLOW_SPINNING = True


def import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise TorchzooError(
            "onnxruntime is not installed: pip install 'torchzoo[cpu]' (or 'torchzoo[gpu]' for CUDA)"
        ) from exc
    onnxruntime.set_default_logger_severity(3)  # onnxruntime-gpu without CUDA libs logs loudly
    return onnxruntime


@dataclass
class Session:
    """An onnxruntime session with the provider it really runs on and why, if that is not the one asked for."""

    session: Any
    provider: str
    notice: str | None = None


def session_options(level: str = "all", threads: int = 0) -> Any:
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if ALLOW_SPINNING else "0")
    options.graph_optimization_level = {
        "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[level]
    return options


def create_session(graph: Path | bytes, provider: str = "auto", level: str = "all", threads: int = 0) -> Session:
    """A session over a graph file or its bytes. ``threads=0`` lets onnxruntime choose."""
    if provider not in PROVIDER_CHOICES:
        raise UserInputError(f"unknown provider '{provider}'; choose {', '.join(PROVIDER_CHOICES)}")
    ort = import_onnxruntime()
    source = graph if isinstance(graph, bytes) else str(graph)
    options = session_options(level, threads)
    available = ort.get_available_providers()
    notice = None
    if provider in ("auto", "cuda") and PROVIDERS["cuda"] in available:
        session = ort.InferenceSession(source, options, providers=[PROVIDERS["cuda"], PROVIDERS["cpu"]])
        if session.get_providers()[0] == PROVIDERS["cuda"]:
            return Session(session, "cuda")
        notice = "CUDA provider failed to initialise (CUDA libraries missing?); using CPU"
    if provider == "cuda":
        raise UserInputError(
            "CUDA was requested but onnxruntime cannot use it here "
            f"(available providers: {', '.join(available)}); install onnxruntime-gpu with CUDA 12 libraries"
        )
    return Session(ort.InferenceSession(source, options, providers=[PROVIDERS["cpu"]]), "cpu", notice)
