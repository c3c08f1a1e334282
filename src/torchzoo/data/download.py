"""Fetch a dataset into a data root: streaming HTTP (urllib), resumed with HTTP Range, verified, placed atomically.

Each file is written to ``<file>.part`` beside its final name. An interrupted transfer (connection cut,
timeout) is retried a bounded number of times, each retry asking for the missing bytes only
(``Range: bytes=<size of .part>-``); a ``.part`` left by a killed run is resumed the same way by the next
run. Once the server's stated length has arrived the ``.part`` is fsynced and its published checksum
checked: a mismatch deletes it and fails (exit 2) naming the file and both hashes; a match renames it to
the final name (atomic on one filesystem), so a file under its final name is always a verified one.
"""

from __future__ import annotations

import http.client
import os
import shutil
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from torchzoo.core.durable import fsync_directory
from torchzoo.core.errors import UserInputError
from torchzoo.data.catalog import SHIPPED_ROOT, DataFile, Dataset
from torchzoo.data.checksum import matches

CHUNK = 1 << 16
USER_AGENT = "torchzoo-data/1"


class DownloadError(UserInputError):
    """A file could not be fetched from any URL (network absent, HTTP error, timeouts). Exit code 2."""


class ChecksumError(UserInputError):
    """A fetched file does not have its published checksum (the download is deleted). Exit code 2."""


class _Interrupted(Exception):
    """The transfer ended before the server's stated length arrived."""


#: progress callbacks: start(file name, total bytes or None, bytes already there) at each attempt, advance(bytes)
Start = Callable[[str, int | None, int], None]
Advance = Callable[[int], None]


@dataclass
class Fetcher:
    """HTTP settings and progress hooks for one ``data download`` run."""

    timeout: float = 30.0
    attempts: int = 3
    backoff: float = 0.5
    on_start: Start = field(default=lambda name, total, done: None)
    on_advance: Advance = field(default=lambda n: None)

    def fetch(self, urls: list[str], dest: Path, checksum: str) -> dict[str, Any]:
        """Fetch ``dest`` from the first of ``urls`` that serves it whole; verify, then place it."""
        part = dest.with_name(dest.name + ".part")
        failures: list[str] = []
        started = time.monotonic()
        for url in urls:
            error = self._fetch_one(url, part)
            if error is None:
                ok, actual = matches(part, checksum)
                if not ok:
                    part.unlink()
                    raise ChecksumError(
                        f"{dest.name}: checksum mismatch, expected {checksum}, got {actual} (from {url}); "
                        "the download was deleted"
                    )
                _place(part, dest)
                return {
                    "file": str(dest),
                    "action": "downloaded",
                    "url": url,
                    "bytes": dest.stat().st_size,
                    "seconds": round(time.monotonic() - started, 3),
                }
            failures.append(f"{url}: {error}")
        raise DownloadError(
            f"could not download {dest.name} ({self.attempts} tries per URL, {self.timeout:g} s timeout): "
            f"{'; '.join(failures)}; check the network connection (or the --mirror URL)"
        )

    def _fetch_one(self, url: str, part: Path) -> str | None:
        """Transfer ``url`` into ``part`` (resuming it), retrying interruptions; None when it is whole."""
        error = "no attempt"
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                self._transfer(url, part)
                return None
            except urllib.error.HTTPError as exc:
                error = f"HTTP {exc.code} {exc.reason}"
                if exc.code < 500 and exc.code not in (408, 429):  # the server's answer will not change
                    return error
            except urllib.error.URLError as exc:
                error = str(exc.reason)
            except (OSError, http.client.HTTPException, _Interrupted) as exc:
                error = str(exc) or type(exc).__name__
        return error

    def _transfer(self, url: str, part: Path) -> None:
        offset = part.stat().st_size if part.exists() else 0
        headers = {"User-Agent": USER_AGENT}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and offset:  # nothing past what we have: the .part is whole (the checksum decides)
                exc.close()
                return
            raise
        with response:
            total = _content_length(response)
            if offset and response.status == 206 and _range_start(response) == offset:
                mode = "ab"
                total = None if total is None else offset + total
            else:  # a fresh transfer (or a server that ignored the Range): start over
                offset, mode = 0, "wb"
            self.on_start(part.name.removesuffix(".part"), total, offset)
            received = offset
            with _writing(part):
                part.parent.mkdir(parents=True, exist_ok=True)  # only once there is something to write
                fh = open(part, mode)  # noqa: SIM115 (closed below; network errors must stay outside _writing)
            try:
                while block := response.read1(CHUNK):  # what has arrived, so a kill loses little
                    with _writing(part):
                        fh.write(block)
                    received += len(block)
                    self.on_advance(len(block))
                with _writing(part):
                    fh.flush()
                    os.fsync(fh.fileno())
            finally:
                fh.close()
        if total is not None and received < total:
            raise _Interrupted(f"connection closed after {received:,} of {total:,} bytes")


def _content_length(response: http.client.HTTPResponse) -> int | None:
    value = response.headers.get("Content-Length")
    return int(value) if value and value.isdigit() else None


def _range_start(response: http.client.HTTPResponse) -> int | None:
    """The first byte of a 206 answer (``Content-Range: bytes <start>-<end>/<total>``)."""
    value = response.headers.get("Content-Range", "")
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


@contextmanager
def _writing(path: Path) -> Iterator[None]:
    """A local write that fails (permissions, disk full) is bad input for this data root, not a network error."""
    try:
        yield
    except OSError as exc:
        raise UserInputError(f"cannot write {path}: {exc.strerror or exc}; choose another --data-dir") from exc


def _place(temp: Path, dest: Path) -> None:
    """Rename a complete, fsynced ``temp`` to ``dest`` and make the rename durable."""
    with _writing(dest):
        os.replace(temp, dest)
        fsync_directory(dest.parent)


def _write_verified(src: BinaryIO, dest: Path, checksum: str, source: str) -> None:
    """Copy ``src`` into ``dest`` through a fsynced ``.part``, checked before the rename."""
    part = dest.with_name(dest.name + ".part")
    with _writing(part):
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(part, "wb") as fh:
            shutil.copyfileobj(src, fh, CHUNK)
            fh.flush()
            os.fsync(fh.fileno())
    ok, actual = matches(part, checksum)
    if not ok:
        part.unlink()
        raise ChecksumError(f"{dest.name}: checksum mismatch, expected {checksum}, got {actual} (from {source})")
    _place(part, dest)


def download_root(data_dir: str | Path | None) -> Path:
    """Where ``data download`` writes: ``--data-dir``, else ``$TORCHZOO_DATA``, else ``./data``."""
    if data_dir is not None:
        return Path(data_dir)
    return Path(os.environ.get("TORCHZOO_DATA") or "data")


def base_urls(dataset: Dataset, mirror: str | None) -> list[str]:
    """The dataset's base URLs, or the one ``--mirror`` (same layout) in their place."""
    if mirror is None:
        return list(dataset.mirrors)
    if not mirror.startswith(("http://", "https://")):
        raise UserInputError(f"--mirror must be an http:// or https:// URL, got '{mirror}'")
    return [mirror.rstrip("/") + "/"]


def _row(path: Path, action: str) -> dict[str, Any]:
    return {"file": str(path), "action": action, "bytes": path.stat().st_size}


def _verified(path: Path, entry: DataFile) -> bool:
    return path.is_file() and matches(path, entry.checksum)[0]


def download(dataset: Dataset, root: Path, fetcher: Fetcher, mirror: str | None = None) -> list[dict[str, Any]]:
    """Bring ``dataset`` into ``root/<dataset.relative>``; one row per file (what was done to it)."""
    directory = root / dataset.relative
    todo = [f for f in dataset.files if not _verified(directory / f.name, f)]
    done = [_row(directory / f.name, "verified") for f in dataset.files if f not in todo]
    if not todo:
        return done
    if dataset.shipped:  # the package's copy, checked against the catalog as it is copied
        for entry in todo:
            with open(SHIPPED_ROOT / dataset.relative / entry.name, "rb") as src:
                _write_verified(src, directory / entry.name, entry.checksum, "the package's copy")
            done.append(_row(directory / entry.name, "copied from the package"))
        return done
    bases = base_urls(dataset, mirror)
    if dataset.archive is None:
        for entry in todo:
            done.append(fetcher.fetch([b + entry.name for b in bases], directory / entry.name, entry.checksum))
        return done
    archive = dataset.archive
    archive_path = root / archive.filename
    if archive_path.is_file() and matches(archive_path, archive.checksum)[0]:
        done.append(_row(archive_path, "verified"))
    else:
        done.append(fetcher.fetch([b + archive.filename for b in bases], archive_path, archive.checksum))
    _unpack(archive_path, archive.member_dir, todo, directory)
    archive_path.unlink()  # every file it held is now in place and verified
    done += [_row(directory / e.name, f"extracted from {archive.filename}") for e in todo]
    return done


def _unpack(archive_path: Path, member_dir: str, entries: list[DataFile], directory: Path) -> None:
    """Extract ``member_dir/<entry>`` for each entry (in archive order, one pass), each one verified."""
    wanted = {f"{member_dir}/{e.name}": e for e in entries}
    try:
        with tarfile.open(archive_path, "r:gz") as tar:
            for member in tar:
                entry = wanted.get(member.name)
                src = tar.extractfile(member) if entry is not None and member.isfile() else None
                if src is None:
                    continue
                with src:
                    _write_verified(src, directory / entry.name, entry.checksum, f"{archive_path.name}:{member.name}")
                del wanted[member.name]
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DownloadError(f"{archive_path} could not be unpacked: {exc}") from exc
    if wanted:
        raise DownloadError(f"{archive_path} lacks {', '.join(wanted)}")
