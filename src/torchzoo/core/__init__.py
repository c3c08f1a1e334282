"""The torch-free core shared by every room: errors, data roots, the artifact contract and the codecs.

Nothing here imports torch, onnx or any training code; ``tests/test_import_graph.py`` proves it from
the import statements themselves. train and export (writers) and serve_cli (the reader) depend on it.
"""
