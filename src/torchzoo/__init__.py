"""torchzoo: train the classic PyTorch tutorial models, export them with proven equivalence, serve them.

Data flows one way: ``train`` -> ``export`` -> artifacts -> ``serve_cli``. The top-level modules here
(errors, paths, artifact, text_codec) are torch-free and shared by every room.
"""

__version__ = "0.1.0"
