"""torchzoo: train the classic PyTorch tutorial models, export them with proven equivalence, serve them.

Data flows one way: ``train`` -> ``export`` -> artifacts -> ``serve_cli``. ``torchzoo.core`` (errors,
paths, the artifact contract, the codecs) is torch-free and shared by every room.
"""

__version__ = "0.1.0"
