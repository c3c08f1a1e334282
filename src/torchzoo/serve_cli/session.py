"""onnxruntime sessions: choose the execution provider quietly and say in one line which was used."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torchzoo.core.errors import TorchzooError, UserInputError

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


def import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise TorchzooError(
            "onnxruntime is not installed: pip install 'torchzoo[cpu]' (or 'torchzoo[gpu]' for CUDA)"
        ) from exc
    onnxruntime.set_default_logger_severity(3)  # onnxruntime-gpu without CUDA libs logs loudly
    return onnxruntime


def create_session(path: Path | bytes, provider: str = "auto") -> tuple[Any, str, str | None]:
    """Return (session, provider used, notice or None). ``auto`` prefers CUDA and falls back to CPU."""
    if provider not in ("auto", *PROVIDERS):
        raise UserInputError(f"unknown provider '{provider}'; choose auto, cpu or cuda")
    ort = import_onnxruntime()
    available = ort.get_available_providers()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    notice = None
    if provider in ("auto", "cuda") and PROVIDERS["cuda"] in available:
        session = ort.InferenceSession(_source(path), options, providers=[PROVIDERS["cuda"], PROVIDERS["cpu"]])
        if session.get_providers()[0] == PROVIDERS["cuda"]:
            return session, "cuda", None
        notice = "CUDA provider failed to initialise (CUDA libraries missing?); using CPU"
    elif provider == "auto":
        notice = None  # a CPU-only onnxruntime: CPU is the expected choice, not a fallback
    if provider == "cuda":
        raise UserInputError(
            "CUDA was requested but onnxruntime cannot use it here "
            f"(available providers: {', '.join(available)}); install onnxruntime-gpu with CUDA 12 libraries"
        )
    session = ort.InferenceSession(_source(path), options, providers=[PROVIDERS["cpu"]])
    return session, "cpu", notice


def _source(graph: Path | bytes) -> str | bytes:
    return graph if isinstance(graph, bytes) else str(graph)
