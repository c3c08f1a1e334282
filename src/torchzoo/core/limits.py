"""The runtime's own limits on what it reads. They are constants of this runtime: nothing in an artifact's
manifest can raise them (a manifest's ``max_length`` or image ``size`` is checked against them)."""

from __future__ import annotations

MiB = 1 << 20

#: artifact files
MAX_MANIFEST_BYTES = 1 * MiB
MAX_SIGNATURE_BYTES = 1 * MiB
MAX_JSON_BYTES = 64 * MiB  # train.json, history.json, equivalence.json... read by list, report, export
MAX_GRAPH_BYTES = 2048 * MiB  # protobuf's own ceiling for one ONNX file
MAX_ARTIFACT_FILES = 64
MAX_FILE_NAME = 128
MAX_LABELS = 10_000
MAX_LABEL_CHARS = 200
MAX_TEXT_CHARS = 10_000  # descriptions and other free text in a manifest
MAX_TENSOR_RANK = 8
MAX_TENSOR_DIM = 1 << 24
MAX_ALPHABET = 1_000
MAX_IMAGE_SIDE = 4_096  # the model's input size a manifest may ask images to be resized to
MAX_FEATURES = 100_000

#: inputs
MAX_NAME_CHARS = 256  # longest name (after folding) a manifest may allow
MAX_RAW_NAME_CHARS = 1_024  # longest name string accepted before folding
MAX_INPUTS = 10_000  # inputs given in one call (names, files, rows on the command line)
MAX_IMAGE_PIXELS = 100_000_000  # 10000x10000 is accepted (and resized); larger is refused before decoding
MAX_IMAGE_BYTES = 256 * MiB
MAX_CSV_BYTES = 64 * MiB
MAX_CSV_ROWS = 100_000
MAX_CELL_CHARS = 100
MAX_NPY_BYTES = 256 * MiB
MAX_BATCH = 100_000  # samples in one prediction, however they were given
