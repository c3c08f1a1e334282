"""The batch engine behind ``torchzoo predict-batch``: inputs -> rows, shared by the local and the Ray Data path.

An input is read as a :class:`Plan`: the items it holds, split into chunks that can be read on their own
(a list of image files, or a byte offset and a line count in a text file), so nothing holds every input at
once and a Ray read task reads one chunk. Items by preprocessing kind:

- ``image``: every PNG/JPEG file under a directory (recursively, sorted; hidden and other files skipped).
- ``features``: the rows of a CSV file, as ``predict`` reads a CSV (UTF-8, blank lines skipped, a first row
  without numbers is a header); each row is predicted as the comma-joined text of its cells.
- ``names_one_hot``: the lines of a UTF-8 text file, one name per line.
- ``tensors`` (a packaged model of one's own): the rows of an ``.npz`` file whose keys are the model's input
  names, row ``i`` (first axis) of every array being sample ``i``; checked whole when planned (names, dtypes,
  shapes), each row carried as the JSON text of ``{"input": "FILE.npz[i]", "tensors": {name: values}}`` (exact
  for every dtype), and its place is ``row`` (0-based).

A batch is predicted with :meth:`Predictor.predict`, the very call ``torchzoo predict`` makes, so a row is
``predict``'s result for that input plus where the input is (``file``, or ``line``: 1-based). A batch that
holds a bad input is split in halves until the bad input stands alone; it becomes a row with an ``error``
(the message ``predict`` gives for it) and the job goes on. Rows are written with :class:`AtomicJsonl`.
"""

from __future__ import annotations

import csv
import functools
import itertools
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import numpy as np

from torchzoo.core.durable import fsync_directory
from torchzoo.core.errors import ArtifactError, OutputError, UserInputError
from torchzoo.core.limits import MAX_INPUTS
from torchzoo.core.text_codec import printable
from torchzoo.serve_cli.array_files import read_npz
from torchzoo.serve_cli.predictor import Predictor, load
from torchzoo.serve_cli.preprocess import is_number
from torchzoo.serve_cli.tensor_inputs import FILE_KINDS, FILE_REFUSAL, read_table, stack_rows

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
#: a longer line is a bad row (read in bounded pieces, never whole)
MAX_LINE_BYTES = 1 << 20
#: items per chunk: what one Ray read task reads
CHUNK_ITEMS = 1024
#: what each input kind is, for messages
WHAT = {
    "image": "a directory of PNG/JPEG images",
    "features": "a CSV file",
    "names_one_hot": "a text file of names",
    "tensors": "an .npz file of rows (keys: the input names)",
}
_BOM = b"\xef\xbb\xbf"
_READ_BLOCK = 1 << 20


@dataclass(frozen=True)
class Item:
    """One input: its position (``seq``, increasing in input order), where it is, its text, or why it is bad."""

    seq: int
    where: dict[str, Any]
    value: str
    error: str | None = None


@dataclass(frozen=True)
class Chunk:
    """A part of the input read on its own: image files, ``lines`` lines of a text file from ``offset``, or
    ``lines`` rows of an .npz from row ``first``."""

    files: tuple[str, ...] = ()
    first: int = 0  # seq of the first file, number of the first line, or index of the first row
    offset: int = 0
    lines: int = 0


@dataclass(frozen=True)
class Plan:
    kind: str  # the model's preprocessing kind
    source: str  # INPUT as given
    chunks: tuple[Chunk, ...]
    total: int  # files, rows, or lines (blank CSV lines and a header among them)
    header_line: int | None = None  # a CSV's header row, not an input
    skipped: int = 0  # files in an image directory that are not PNG/JPEG

    def items(self) -> Iterator[Item]:
        for chunk in self.chunks:
            yield from read_chunk(self, chunk)


@dataclass
class Summary:
    rows: int = 0
    failed: int = 0
    seconds: float = 0.0
    first_row_seconds: float | None = None  # start-up: until the first rows were written
    compute_seconds: float | None = None  # Ray: first batch begun to last batch done, on the actors' clocks
    actors: dict[str, int] = field(default_factory=dict)  # Ray: rows predicted by each actor (node:pid)
    errors: list[dict[str, Any]] = field(default_factory=list)  # the first few error rows, for the summary

    def add(self, row: dict[str, Any]) -> None:
        self.rows += 1
        if "error" in row:
            self.failed += 1
            if len(self.errors) < 5:
                self.errors.append(row)


def load_predictor(directory: str | Path, provider: str = "auto", variant: str = "fp32") -> Predictor:
    """The predictor a batch job uses: onnxruntime's threads do not spin-wait after a run, since between runs
    this process decodes the next batch and spinning takes the core it needs (measured: 1.5-2.1x faster)."""
    from torchzoo.core import session

    session.ALLOW_SPINNING = False
    return load(directory, provider, variant=variant)


def plan_inputs(
    kind: str, source: str, chunk_items: int = CHUNK_ITEMS, inputs: list[dict[str, Any]] | None = None
) -> Plan:
    """The plan for INPUT ``source`` of a model whose preprocessing is ``kind`` (``inputs``: the manifest's
    inputs, which an .npz of rows is checked against); a UserInputError (one line) when the input is missing or
    is not what the model reads."""
    if kind not in WHAT:
        raise UserInputError(f"predict-batch does not read inputs for models with preprocessing '{kind}'")
    path = Path(source)
    shown = printable(source)
    if not path.exists():
        raise UserInputError(f"no such input: {shown}")
    if kind == "image" and not path.is_dir():
        raise UserInputError(f"this model takes {WHAT[kind]}; {shown} is not a directory")
    if kind != "image" and not path.is_file():
        what = "a directory" if path.is_dir() else "not a regular file"
        raise UserInputError(f"this model takes {WHAT[kind]}; {shown} is {what}")
    if kind == "tensors":
        return _plan_rows(source, chunk_items, inputs or [])
    return _plan_images(source, chunk_items) if kind == "image" else _plan_lines(kind, source, chunk_items)


def _plan_rows(source: str, chunk_items: int, inputs: list[dict[str, Any]]) -> Plan:
    """An .npz of rows, checked against the model's inputs once here; chunks are row ranges."""
    total = int(next(iter(read_table(source, inputs).values())).shape[0])
    chunks = tuple(Chunk(first=i, lines=min(chunk_items, total - i)) for i in range(0, total, chunk_items))
    return Plan("tensors", source, chunks, total)


@functools.lru_cache(maxsize=1)
def _rows_file(source: str, modified_ns: int, size: int) -> dict[str, np.ndarray]:
    """The arrays of an .npz of rows, read once per process and version of the file (every chunk reads it)."""
    return read_npz(source, FILE_KINDS, FILE_REFUSAL)


def _row_items(plan: Plan, chunk: Chunk) -> Iterator[Item]:
    info = os.stat(plan.source)
    arrays = _rows_file(plan.source, info.st_mtime_ns, info.st_size)
    shown = printable(plan.source)
    for row in range(chunk.first, chunk.first + chunk.lines):
        if any(row >= len(a) for a in arrays.values()):
            raise UserInputError(f"{shown} changed while it was read (it has fewer rows than planned)")
        tensors = {name: array[row].tolist() for name, array in arrays.items()}
        yield Item(row, {"row": row}, json.dumps({"input": f"{shown}[{row}]", "tensors": tensors}))


def _plan_images(source: str, chunk_items: int) -> Plan:
    files: list[str] = []
    skipped = 0
    for folder, subfolders, names in os.walk(source):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            if name.lower().endswith(IMAGE_SUFFIXES):
                files.append(os.path.join(folder, name))
            else:
                skipped += 1
    if not files:
        raise UserInputError(f"no PNG/JPEG files in {printable(source)}")
    chunks = tuple(Chunk(files=tuple(files[i : i + chunk_items]), first=i) for i in range(0, len(files), chunk_items))
    return Plan("image", source, chunks, len(files), skipped=skipped)


def _plan_lines(kind: str, source: str, chunk_items: int) -> Plan:
    """One pass over the file's bytes: where every ``chunk_items``-th line starts, and how many lines."""
    chunks: list[Chunk] = []
    start_offset, start_line, line, offset = 0, 1, 1, 0
    ends_with_newline = True
    with open(source, "rb") as stream:
        while block := stream.read(_READ_BLOCK):
            position = block.find(b"\n")
            while position != -1:
                line += 1
                if line - start_line == chunk_items:
                    chunks.append(Chunk(first=start_line, offset=start_offset, lines=chunk_items))
                    start_offset, start_line = offset + position + 1, line
                position = block.find(b"\n", position + 1)
            offset += len(block)
            ends_with_newline = block.endswith(b"\n")
    total = line - 1 if ends_with_newline else line  # a last line without its newline still counts
    if total >= start_line:
        chunks.append(Chunk(first=start_line, offset=start_offset, lines=total - start_line + 1))
    if not chunks:
        raise UserInputError(f"{printable(source)} is empty")
    header = _csv_header_line(source) if kind == "features" else None
    return Plan(kind, source, tuple(chunks), total, header_line=header)


def _csv_header_line(source: str) -> int | None:
    """The number of the first non-blank line when none of its cells is a number (``predict``'s rule)."""
    with open(source, "rb") as stream:
        for number, (raw, error) in enumerate(_lines(stream, None), start=1):
            if error is not None:
                return None
            cells = _cells(raw, number == 1)
            if cells is None or not any(cell.strip() for cell in cells):
                continue
            return None if any(is_number(cell) for cell in cells) else number
    return None


def _lines(stream: IO[bytes], count: int | None) -> Iterator[tuple[bytes, str | None]]:
    """Up to ``count`` lines (without their line end), each read in pieces of at most ``MAX_LINE_BYTES``; a
    longer line is skipped to its end and comes back as an error."""
    for _ in itertools.count() if count is None else range(count):
        raw = stream.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while (rest := stream.readline(_READ_BLOCK)) and not rest.endswith(b"\n"):
                pass
            yield b"", f"longer than {MAX_LINE_BYTES:,} bytes"
            continue
        yield raw.rstrip(b"\n").rstrip(b"\r"), None


def _cells(raw: bytes, first: bool) -> list[str] | None:
    """A CSV line's cells, or None when it is not UTF-8 or not one CSV row."""
    try:
        text = (raw.removeprefix(_BOM) if first else raw).decode("utf-8")
        return next(csv.reader([text]), [])
    except (UnicodeDecodeError, csv.Error):
        return None


def read_chunk(plan: Plan, chunk: Chunk) -> Iterator[Item]:
    """The items of one chunk, in input order."""
    if plan.kind == "tensors":
        yield from _row_items(plan, chunk)
        return
    if plan.kind == "image":
        for seq, path in enumerate(chunk.files, start=chunk.first):
            yield Item(seq, {"file": path}, path)
        return
    with open(plan.source, "rb") as stream:
        stream.seek(chunk.offset)
        for number, (raw, error) in enumerate(_lines(stream, chunk.lines), start=chunk.first):
            item = _line_item(plan, number, raw, error)
            if item is not None:
                yield item


def _line_item(plan: Plan, number: int, raw: bytes, error: str | None) -> Item | None:
    where = {"line": number}
    if error is not None:
        return Item(number, where, "", f"{printable(plan.source)} line {number}: {error}")
    if plan.kind == "names_one_hot":
        try:
            return Item(number, where, (raw.removeprefix(_BOM) if number == 1 else raw).decode("utf-8"))
        except UnicodeDecodeError:
            shown = raw.decode("utf-8", "backslashreplace")
            return Item(number, where, shown, f"{printable(plan.source)} line {number} is not valid UTF-8")
    if number == plan.header_line:
        return None
    cells = _cells(raw, number == 1)
    if cells is None:
        shown = raw.decode("utf-8", "backslashreplace")
        return Item(number, where, shown, f"{printable(plan.source)} line {number} is not a readable UTF-8 CSV row")
    if not any(cell.strip() for cell in cells):
        return None  # blank lines are skipped, as predict skips them in a CSV
    return Item(number, where, ",".join(cells))


def batches(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _message(exc: Exception) -> str:
    return " ".join(str(exc).split())  # as the CLI prints an error: one line


def _row_error(exc: Exception) -> bool:
    """An error that belongs to one input (a refused input, an output that is not an answer for it); any other
    artifact error stops the job."""
    return isinstance(exc, OutputError) or (isinstance(exc, UserInputError) and not isinstance(exc, ArtifactError))


def predict_items(predictor: Predictor, items: list[Item], top_k: int = 3, threshold: float = 0.5) -> list[dict]:
    """One row per item, in order: ``predict``'s result (or ``input`` and ``error``) with the item's place."""
    values, labels = _values(predictor, items)
    rows: list[dict[str, Any] | None] = [
        {**item.where, "input": label, "error": item.error} if item.error is not None else None
        for item, label in zip(items, labels, strict=True)
    ]
    good = [i for i, row in enumerate(rows) if row is None]

    def run(indices: list[int]) -> None:
        try:
            results = predictor.predict(_batch(predictor, values, labels, indices), top_k=top_k, threshold=threshold)
        except Exception as exc:
            if not _row_error(exc):
                raise
            if len(indices) == 1:
                rows[indices[0]] = {**items[indices[0]].where, "input": labels[indices[0]], "error": _message(exc)}
                return
            half = len(indices) // 2
            run(indices[:half])
            run(indices[half:])
            return
        for i, result in zip(indices, results, strict=True):
            rows[i] = {**items[i].where, **result, "input": labels[i]}

    for start in range(0, len(good), MAX_INPUTS):
        run(good[start : start + MAX_INPUTS])
    return [row for row in rows if row is not None]


def _values(predictor: Predictor, items: list[Item]) -> tuple[list[Any], list[str]]:
    """What each item gives ``predict`` and the label its row shows: the item's text for both, or for a row of
    tensors the decoded values and ``FILE.npz[i]``."""
    if predictor.manifest["preprocessing"]["kind"] != "tensors":
        return [item.value for item in items], [item.value for item in items]
    decoded = [json.loads(item.value) if item.error is None else {"input": item.value} for item in items]
    return [d.get("tensors") for d in decoded], [str(d["input"]) for d in decoded]


def _batch(predictor: Predictor, values: list[Any], labels: list[str], indices: list[int]) -> Any:
    """The inputs of one ``predict`` call: the items' texts, or their tensor rows stacked by input."""
    if predictor.manifest["preprocessing"]["kind"] != "tensors":
        return [values[i] for i in indices]
    specs = predictor.manifest["inputs"]
    return stack_rows([values[i] for i in indices], specs, "rows", [labels[i] for i in indices])


def dump_row(row: dict[str, Any]) -> str:
    """One JSONL line (no newline). The values are those ``predict --json`` prints, so they parse equal."""
    return json.dumps(row, allow_nan=False, separators=(",", ":"))


class AtomicJsonl:
    """A JSONL file that appears under its name only when complete: lines go to a hidden temporary file in the
    same directory, which is flushed, fsynced and renamed over ``path`` on success, and removed on failure."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        shown = printable(str(path))
        if self.path.is_dir():
            raise UserInputError(f"--output {shown} is a directory")
        if not self.path.parent.is_dir():
            raise UserInputError(f"--output {shown}: no such directory {printable(str(self.path.parent))}")
        self._stream: IO[str] | None = None

    def __enter__(self) -> AtomicJsonl:
        try:
            fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".part", dir=self.path.parent)
        except OSError as exc:
            raise UserInputError(f"--output {printable(str(self.path))}: cannot write there ({exc.strerror})") from None
        self._temp = Path(name)
        self._stream = os.fdopen(fd, "w", encoding="utf-8", newline="\n")
        return self

    def write(self, line: str) -> None:
        assert self._stream is not None
        self._stream.write(line + "\n")

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        assert self._stream is not None
        try:
            if kind is None:
                self._stream.flush()
                os.fsync(self._stream.fileno())
            self._stream.close()
            if kind is None:
                os.chmod(self._temp, 0o666 & ~_umask())  # mkstemp's 0600 -> what open() would give
                os.replace(self._temp, self.path)
                fsync_directory(self.path.parent)
        finally:
            self._temp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


Progress = Callable[[int, int], None]  # (rows written, of which failed)


def run_local(
    predictor: Predictor,
    plan: Plan,
    output: str | Path,
    batch_size: int = 256,
    top_k: int = 3,
    threshold: float = 0.5,
    on_progress: Progress | None = None,
) -> Summary:
    """Predict every input of ``plan`` in batches of ``batch_size`` in this process; rows go to ``output``."""
    summary = Summary()
    started = time.perf_counter()
    with AtomicJsonl(output) as out:
        for batch in batches(plan.items(), batch_size):
            for row in predict_items(predictor, batch, top_k, threshold):
                out.write(dump_row(row))
                summary.add(row)
            summary.first_row_seconds = summary.first_row_seconds or time.perf_counter() - started
            if on_progress:
                on_progress(summary.rows, summary.failed)
    summary.seconds = time.perf_counter() - started
    return summary


def interrupt_on_sigterm() -> None:
    """SIGTERM raises KeyboardInterrupt (in the main thread), so a killed job removes its temporary file."""
    import signal
    import threading

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)
