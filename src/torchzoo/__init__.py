"""torchzoo: train the classic PyTorch tutorial models, export them with proven equivalence, serve them.

Data flows one way: ``train`` -> ``export`` -> artifacts -> ``serve_cli``. ``torchzoo.core`` (errors,
paths, the artifact contract, the codecs) is torch-free and shared by every room.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "package"]


def __getattr__(name: str) -> object:
    """``torchzoo.package`` (the train extra: torch) is imported on first use, so that ``import torchzoo`` in a
    runtime-only install imports no torch."""
    if name == "package":
        try:
            from torchzoo.export.package import package
        except ModuleNotFoundError as exc:
            raise ImportError(
                f"torchzoo.package needs the train extra ({exc.name} is not installed): "
                "pip install torch==2.13.0 && pip install 'torchzoo[train,cpu]'"
            ) from None
        return package
    raise AttributeError(f"module 'torchzoo' has no attribute {name!r}")
