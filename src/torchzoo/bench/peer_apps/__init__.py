"""The peers of ``torchzoo bench --serve``, each a small app a user of that server would write to serve one
``model.onnx`` with onnxruntime (intra-op spinning off, as torchzoo's server sets it), run from its own virtual
environment by :mod:`torchzoo.bench.serve_peers`. torchzoo never imports these modules."""
