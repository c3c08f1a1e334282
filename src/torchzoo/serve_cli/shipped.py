"""Artifacts that travel with a Ray job instead of being read from a path on every node.

The driver reads each artifact once and checks it (:func:`pack`: the manifest through ``read_manifest``, the graph
through ``read_verified`` against that manifest), and the bytes go into Ray's object store (:func:`put`). A replica
or actor fetches them (:func:`fetch`) and writes them into a fresh local directory of its own (:func:`unpacked`),
where :class:`~torchzoo.serve_cli.predictor.Predictor` checks every sha256 against the manifest again before it
creates a session: a transfer damaged on the way is refused, and no node reads the driver's ``--artifacts-dir``.

A model whose files do not fit in the smallest object store of the cluster is refused before anything is shipped
(:func:`check_fits`). Torch-free; Ray is imported only inside the functions that talk to it.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torchzoo.core import artifact
from torchzoo.core.errors import ArtifactError, UserInputError
from torchzoo.core.limits import MAX_MANIFEST_BYTES
from torchzoo.core.safe_io import read_artifact_file
from torchzoo.core.text_codec import printable
from torchzoo.serve_cli.predictor import variant_file

#: the bytes of one artifact directory: file name -> content (``manifest.json`` and the graph the runtime reads)
Files = dict[str, bytes]
MIB = 1 << 20


def pack(directory: Path, variant: str = "fp32") -> Files:
    """The files the runtime needs of the artifact at ``directory``, checked once: the manifest (every check of
    ``read_manifest``) and the variant's graph, whose sha256 and size must be the manifest's. The manifest's bytes
    are the very bytes that were checked (re-read and compared), so what ships is what is on disk."""
    manifest = artifact.read_manifest(directory)
    raw = read_artifact_file(directory, artifact.MANIFEST, MAX_MANIFEST_BYTES)
    if json.loads(raw.decode("utf-8")) != manifest:
        raise ArtifactError(f"{printable(str(directory / artifact.MANIFEST))} changed while it was read; try again")
    graph = variant_file(manifest, variant, printable(str(directory)))
    return {artifact.MANIFEST: raw, graph: artifact.read_verified(directory, manifest, graph)}


def size(files: Mapping[str, bytes]) -> int:
    return sum(len(data) for data in files.values())


@dataclass(frozen=True)
class StoreLimit:
    """The smallest object store of the cluster: its capacity in bytes and the node it is on."""

    capacity: int
    node: str

    def check(self, what: str, nbytes: int) -> None:
        """A one-line refusal (exit 2) when ``nbytes`` of ``what`` do not fit in this object store."""
        if nbytes > self.capacity:
            raise UserInputError(
                f"{what}: {nbytes / MIB:,.1f} MiB of artifact files to ship, more than the smallest Ray object "
                f"store of the cluster ({self.capacity / MIB:,.1f} MiB, node {self.node}); start that node with "
                "a larger 'ray start --object-store-memory'"
            )


def store_limit(nodes: list[dict[str, Any]]) -> StoreLimit | None:
    """The smallest ``object_store_memory`` of the alive nodes in ``ray.nodes()``; None when none says."""
    sizes = [
        StoreLimit(int(node["Resources"]["object_store_memory"]), str(node.get("NodeManagerAddress", "?")))
        for node in nodes
        if node.get("Alive") and node.get("Resources", {}).get("object_store_memory")
    ]
    return min(sizes, key=lambda s: s.capacity) if sizes else None


def check_fits(shipments: Mapping[str, int]) -> None:
    """Refuse (one line, exit 2) a model whose bytes exceed the smallest object store of the connected cluster:
    every node a replica runs on holds a copy while it is written out."""
    import ray

    limit = store_limit(ray.nodes())
    if limit is not None:
        for name, nbytes in shipments.items():
            limit.check(name, nbytes)


def put(files: Any) -> Any:
    """Put ``files`` (any picklable structure of :data:`Files`) into Ray's object store; its ObjectRef."""
    import ray

    return ray.put(files)


def fetch(shipped: Any) -> Any:
    """What :func:`put` stored (``shipped`` is its ObjectRef), or ``shipped`` itself when it is already the bytes."""
    import ray

    return ray.get(shipped) if isinstance(shipped, ray.ObjectRef) else shipped


def write(directory: Path, files: Mapping[str, bytes]) -> Path:
    """Write ``files`` into ``directory`` (created); names are plain file names, never paths."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        if Path(name).name != name or name in ("", ".", ".."):
            raise ArtifactError(f"refusing to write shipped file {printable(repr(name), 80)}: not a plain file name")
        (directory / name).write_bytes(data)
    return directory


@contextlib.contextmanager
def unpacked(prefix: str = "torchzoo-shipped-") -> Iterator[Path]:
    """A fresh private directory (0700) for shipped files, removed afterwards: a session holds the graph in
    memory once it exists, so nothing needs the files after loading."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)
