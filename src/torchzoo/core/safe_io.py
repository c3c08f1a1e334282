"""Reading files that someone else may have made: only regular files, never blocking, sizes bounded first.

Artifact files are plain names inside their directory, opened relative to it with ``O_NOFOLLOW``; a
symbolic link is followed only when it stays inside the directory. Input files (images, CSV, ``.npy``)
are whatever path the user gave. In both cases the file is opened with ``O_NONBLOCK`` (a FIFO without
a writer does not block the open) and ``fstat``-ed before a byte is read: FIFOs, devices, sockets and
directories are refused at once, and a file larger than the caller's bound is refused before reading.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from torchzoo.core.errors import ArtifactError, UserInputError
from torchzoo.core.limits import MAX_FILE_NAME
from torchzoo.core.text_codec import printable

_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0)


def is_plain_name(name: object) -> bool:
    """A file name the artifact may list: no directory part, no ``..``, no leading dot, no odd characters."""
    return (
        isinstance(name, str) and 0 < len(name) <= MAX_FILE_NAME and _PLAIN.fullmatch(name) is not None
    ) and ".." not in name


def _kind(mode: int) -> str | None:
    """What a non-regular file is, for the error; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _read_fd(fd: int, size: int) -> bytes:
    chunks, left = [], size
    while left > 0:
        block = os.read(fd, min(left, 1 << 24))
        if not block:
            break
        chunks.append(block)
        left -= len(block)
    return b"".join(chunks)


def open_artifact_file(directory: Path, name: str) -> int:
    """An fd on the regular file ``name`` of an artifact directory (the caller closes it)."""
    shown = printable(f"{directory}/{name}")
    if not is_plain_name(name):
        raise ArtifactError(
            f"{printable(str(directory))}: the manifest names a file {printable(str(name))!r}; "
            "an artifact lists plain file names only"
        )
    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise ArtifactError(f"cannot open the artifact directory {printable(str(directory))} ({exc.strerror})") from exc
    try:
        try:
            info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            raise ArtifactError(f"{shown} is missing; re-run 'torchzoo export'") from None
        if stat.S_ISLNK(info.st_mode):
            root = os.path.realpath(directory)
            target = os.path.realpath(directory / name)
            if os.path.dirname(target) != root:
                raise ArtifactError(f"{shown} is a symbolic link leading outside the artifact; refused")
            name = os.path.basename(target)
        try:
            fd = os.open(name, _FLAGS | os.O_NOFOLLOW, dir_fd=dir_fd)
        except FileNotFoundError:
            raise ArtifactError(f"{shown} is missing; re-run 'torchzoo export'") from None
        except OSError as exc:
            raise ArtifactError(f"{shown} cannot be opened ({exc.strerror}); refused") from exc
    finally:
        os.close(dir_fd)
    kind = _kind(os.fstat(fd).st_mode)
    if kind is not None:
        os.close(fd)
        raise ArtifactError(f"{shown} is {kind}, not a regular file; refused")
    return fd


def read_artifact_file(directory: Path, name: str, max_bytes: int, expected_size: int | None = None) -> bytes:
    """The bytes of an artifact's own regular file, refused before reading when larger than ``max_bytes``
    (or of another size than ``expected_size``, the size its manifest records)."""
    fd = open_artifact_file(directory, name)
    try:
        size = os.fstat(fd).st_size
        shown = printable(f"{directory}/{name}")
        if expected_size is not None and size != expected_size:
            raise ArtifactError(f"{shown} does not match the sha256 in its manifest (size {size}, not {expected_size})")
        if size > max_bytes:
            raise ArtifactError(f"{shown} is {size:,} bytes; at most {max_bytes:,} are read")
        return _read_fd(fd, size)
    finally:
        os.close(fd)


def read_input_file(path: str | Path, max_bytes: int, what: str) -> bytes:
    """The bytes of an input file the user named; FIFOs, devices and directories are refused at once."""
    shown = printable(str(path))
    try:
        fd = os.open(path, _FLAGS)
    except FileNotFoundError:
        raise UserInputError(f"no such {what} file: {shown}") from None
    except OSError as exc:
        raise UserInputError(f"cannot open {shown} ({exc.strerror})") from exc
    try:
        info = os.fstat(fd)
        kind = _kind(info.st_mode)
        if kind is not None:
            raise UserInputError(f"{shown} is {kind}, not a regular {what} file")
        if info.st_size > max_bytes:
            raise UserInputError(f"{shown} is {info.st_size:,} bytes; a {what} file may have at most {max_bytes:,}")
        try:
            return _read_fd(fd, info.st_size)
        except OSError as exc:
            raise UserInputError(f"cannot read {shown} ({exc.strerror})") from exc
    finally:
        os.close(fd)
