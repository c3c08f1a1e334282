"""The runtime's view of an artifact: the manifest, validated, and files checked against their sha256.

The implementation is shared with ``torchzoo verify`` and lives in :mod:`torchzoo.artifact`.
"""

from torchzoo.artifact import read_manifest, verify_file, verify_files

__all__ = ["read_manifest", "verify_file", "verify_files"]
