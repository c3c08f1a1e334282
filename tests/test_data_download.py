"""``torchzoo data download`` against a real HTTP server on 127.0.0.1 (a thread, free port) serving the shared
MNIST .gz files byte for byte, so the published checksums apply: a good download that the MNIST loader then
reads, a corrupted byte, a connection cut halfway then resumed with Range, a 404, no server at all, and a
killed download. Every case ends with verified files or no files, and a one-line error. Also: the shipped
names data with no data root at all, the missing-dataset hint, and the CIFAR-10 loader's choice of batches.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from torchzoo.data.catalog import MNIST

BIG = "train-images-idx3-ubyte.gz"
HALF = next(f.size for f in MNIST.files if f.name == BIG) // 2
NO_PROXY_ENV = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "TORCHZOO_DATA")


@pytest.fixture(scope="module")
def files(data_root: Path) -> dict[str, bytes]:
    """The four MNIST .gz files of the tests' data root (the published ones: their md5s are checked here), by name."""
    raw = data_root / MNIST.relative
    found = {f.name: (raw / f.name).read_bytes() for f in MNIST.files}
    assert len(found[BIG]) == 2 * HALF
    return found


class MirrorServer:
    """A small HTTP/1.0 file server with ``Range: bytes=N-`` support and failure modes set per file:
    ``cut`` (first full request: half the body, then the connection closes), ``stall`` (half the body,
    then wait until released), absent names answer 404. ``requests`` records (file, Range header)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = dict(files)
        self.cut: set[str] = set()
        self.stall: set[str] = set()
        self.requests: list[tuple[str, str | None]] = []
        self.stalled = threading.Event()
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.lstrip("/")
                rng = self.headers.get("Range")
                server.requests.append((name, rng))
                body = server.files.get(name)
                if body is None:
                    self.send_error(404)
                    return
                start = int(rng.removeprefix("bytes=").split("-")[0]) if rng else 0
                if start >= len(body):
                    self.send_error(416)
                    return
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if name in server.stall and not rng:
                    self.wfile.write(body[:HALF])
                    self.wfile.flush()
                    server.stalled.set()
                    server.release.wait(timeout=60)
                    return
                if name in server.cut and not rng:
                    server.cut.discard(name)
                    self.wfile.write(body[:HALF])
                    return  # HTTP/1.0: the connection closes here, short of Content-Length
                self.wfile.write(body[start:])

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> MirrorServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in NO_PROXY_ENV}
    return {**env, "COLUMNS": "200", **extra}


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-c", "from torchzoo.cli import main; main()", *args]


def cli(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(_cmd(*args), cwd=cwd, capture_output=True, text=True, timeout=timeout, env=_env())


def _error_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("torchzoo: error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def _raw(root: Path) -> Path:
    return root / "MNIST" / "raw"


def _files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _assert_only_verified(root: Path) -> None:
    """Every file left is a complete MNIST file with the published md5 (no .part, nothing else)."""
    published = {f.name: f.checksum.removeprefix("md5:") for f in MNIST.files}
    for path in _files_under(root):
        assert path.name in published, f"unexpected file {path}"
        assert hashlib.md5(path.read_bytes()).hexdigest() == published[path.name]


@pytest.mark.slow  # ends by training mnist-mlp from the downloaded root
def test_good_download_is_read_by_the_mnist_loader(tmp_path: Path, files: dict[str, bytes]) -> None:
    root = tmp_path / "root"
    with MirrorServer(files) as server:
        result = cli("data", "download", "mnist", "--mirror", server.url, "--data-dir", str(root), "--json")
        again = cli("data", "download", "mnist", "--mirror", server.url, "--data-dir", str(root), "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["files"]
    assert [(Path(r["file"]).name, r["action"]) for r in rows] == [(name, "downloaded") for name in files]
    assert all(r["url"] == f"{server.url}/{Path(r['file']).name}" for r in rows)
    assert sorted(p.name for p in _files_under(root)) == sorted(files)
    for name, body in files.items():
        assert (_raw(root) / name).read_bytes() == body
    # a second run finds every file verified and fetches nothing
    assert again.returncode == 0, again.stderr
    assert {r["action"] for r in json.loads(again.stdout)["files"]} == {"verified"}
    assert len(server.requests) == len(files)

    from torchzoo.core.paths import find_dataset
    from torchzoo.train.datasets import read_mnist

    directory = find_dataset("MNIST/raw", "MNIST", root)
    assert directory == _raw(root)
    data = read_mnist(directory)
    assert data.train.images.shape == (60000, 28, 28) and data.test.images.shape == (10000, 28, 28)
    assert data.train.targets[:5].tolist() == [5, 0, 4, 1, 9]  # MNIST's first training labels
    assert data.test.targets[:5].tolist() == [7, 2, 1, 0, 4]
    assert np.bincount(data.test.targets).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    # and training uses them: the quick profile of mnist-mlp from that data root alone (run from an empty cwd)
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    trained = cli("train", "mnist-mlp", "--profile", "quick", "--data-dir", str(root), "--json", cwd=cwd, timeout=600)
    assert trained.returncode == 0, trained.stderr
    metrics = json.loads(trained.stdout)["models"][0]["metrics"]
    assert metrics["test_size"] == 10000 and metrics["test_accuracy"] > 0.85  # quick profile: ~0.90


def test_corrupted_byte_deletes_the_download_and_exits_2(tmp_path: Path, files: dict[str, bytes]) -> None:
    name = "train-labels-idx1-ubyte.gz"
    corrupted = bytearray(files[name])
    corrupted[len(corrupted) // 2] ^= 0xFF
    actual = hashlib.md5(corrupted).hexdigest()
    root = tmp_path / "root"
    with MirrorServer({**files, name: bytes(corrupted)}) as server:
        result = cli("data", "download", "mnist", "--mirror", server.url, "--data-dir", str(root))
    assert result.returncode == 2, result.stderr
    line = _error_line(result)
    assert name in line and "expected md5:d53e105ee54ea40749a09fcbcd1e9432" in line and f"got md5:{actual}" in line
    assert not (_raw(root) / name).exists() and not (_raw(root) / f"{name}.part").exists()
    assert [p.name for p in _files_under(root)] == [BIG]  # fetched before the bad one, and verified
    _assert_only_verified(root)


def test_connection_cut_halfway_is_resumed_with_range(tmp_path: Path, files: dict[str, bytes]) -> None:
    root = tmp_path / "root"
    with MirrorServer(files) as server:
        server.cut.add(BIG)
        result = cli("data", "download", "mnist", "--mirror", server.url, "--data-dir", str(root))
    assert result.returncode == 0, result.stderr
    assert server.requests[:2] == [(BIG, None), (BIG, f"bytes={HALF}-")]  # the second asks only for the rest
    assert (_raw(root) / BIG).read_bytes() == files[BIG]
    assert sorted(p.name for p in _files_under(root)) == sorted(files)
    _assert_only_verified(root)


def test_404_is_one_line_and_leaves_no_file_for_it(tmp_path: Path, files: dict[str, bytes]) -> None:
    missing = "t10k-labels-idx1-ubyte.gz"
    root = tmp_path / "root"
    with MirrorServer({k: v for k, v in files.items() if k != missing}) as server:
        result = cli("data", "download", "mnist", "--mirror", server.url, "--data-dir", str(root))
    assert result.returncode == 2, result.stderr
    line = _error_line(result)
    assert f"could not download {missing}" in line and "HTTP 404" in line
    assert [r for r in server.requests if r[0] == missing] == [(missing, None)]  # a 404 is not retried
    assert sorted(p.name for p in _files_under(root)) == sorted(set(files) - {missing})
    _assert_only_verified(root)


def test_no_server_is_one_line_in_bounded_time(tmp_path: Path) -> None:
    with socket.socket() as s:  # a free port, closed again: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = tmp_path / "root"
    result = cli(
        "data", "download", "mnist", "--mirror", f"http://127.0.0.1:{port}", "--data-dir", str(root), timeout=60
    )
    assert result.returncode == 2, result.stderr
    line = _error_line(result)
    assert f"could not download {BIG}" in line and "Connection refused" in line and "3 tries" in line
    assert not root.exists()  # not even an empty directory that training would take for the dataset


def test_bad_target_and_bad_mirror_are_one_line_errors(tmp_path: Path, files: dict[str, bytes]) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    with MirrorServer(files) as server:
        result = cli("data", "download", "mnist", "--mirror", server.url, "--data-dir", str(not_a_dir))
    assert result.returncode == 2
    assert "cannot write" in _error_line(result) and "choose another --data-dir" in _error_line(result)
    result = cli("data", "download", "mnist", "--mirror", "ftp://example.org/mnist", "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert "--mirror must be an http:// or https:// URL" in _error_line(result)
    assert _files_under(tmp_path) == [not_a_dir]


def test_killed_download_leaves_nothing_that_looks_complete_and_resumes(
    tmp_path: Path, files: dict[str, bytes]
) -> None:
    root = tmp_path / "root"
    with MirrorServer(files) as server:
        server.stall.add(BIG)
        args = ("data", "download", "mnist", "--mirror", server.url, "--data-dir", str(root))
        proc = subprocess.Popen(_cmd(*args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env())
        try:
            assert server.stalled.wait(timeout=60)
            part = _raw(root) / f"{BIG}.part"
            deadline = time.monotonic() + 30
            while not (part.exists() and part.stat().st_size == HALF) and time.monotonic() < deadline:
                time.sleep(0.05)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(timeout=30)
        assert [p.name for p in _files_under(root)] == [f"{BIG}.part"]  # never under its final name
        kept = part.stat().st_size
        assert 0 < kept <= HALF
        listed = {r["dataset"]: r for r in json.loads(cli("data", "list", "--data-dir", str(root), "--json").stdout)}
        assert listed["mnist"]["partial"] == [f"{BIG}.part"] and listed["mnist"]["verified"] == []
        server.stall.clear()
        server.release.set()
        result = cli(*args)
    assert result.returncode == 0, result.stderr
    assert (BIG, f"bytes={kept}-") in server.requests  # the next run resumed the .part
    assert sorted(p.name for p in _files_under(root)) == sorted(files)
    _assert_only_verified(root)


def test_missing_dataset_names_the_download_command(tmp_path: Path) -> None:
    from torchzoo.core.errors import DataNotFoundError
    from torchzoo.core.paths import find_dataset

    with pytest.raises(DataNotFoundError, match=f"torchzoo data download mnist --data-dir {tmp_path}'"):
        find_dataset("MNIST/raw", "MNIST", tmp_path)
    with pytest.raises(DataNotFoundError, match="torchzoo data download cifar10"):
        find_dataset("cifar-10-batches-py", "CIFAR-10", tmp_path)
    result = cli("train", "mnist-mlp", "--profile", "quick", "--data-dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert f"fetch it with 'torchzoo data download mnist --data-dir {tmp_path}'" in _error_line(result)


@pytest.mark.slow  # trains names
def test_names_trains_from_the_shipped_copy_with_no_data_root(tmp_path: Path) -> None:
    """No --data-dir, TORCHZOO_DATA unset, a cwd with no ./data: the package's copy. A development data root in a
    folder beside the clone is no data root: the product searches only --data-dir, $TORCHZOO_DATA and ./data."""
    cwd = tmp_path / "clone"
    cwd.mkdir()
    beside = tmp_path / "shared" / "data"
    (beside / "MNIST" / "raw").mkdir(parents=True)
    (beside / "names").mkdir()
    (beside / "names" / "Italian.txt").write_text("Rossi\n")
    assert not (cwd / "data").exists()
    listed = {r["dataset"]: r for r in json.loads(cli("data", "list", "--json", cwd=cwd).stdout)}
    assert listed["names"]["found"] == "shipped in the package" and listed["names"]["state"] == "verified (18 files)"
    assert listed["mnist"]["found"] == "not found" and listed["mnist"]["fetch"] == "torchzoo data download mnist"
    result = cli("train", "names", "--profile", "quick", "--json", cwd=cwd, timeout=600)
    assert result.returncode == 0, result.stderr
    trained = json.loads(result.stdout)["models"][0]
    assert trained["error"] is None and trained["metrics"]["test_size"] == 2005  # the stratified 10% test split
    record = json.loads((cwd / "artifacts" / "names" / "train.json").read_text())
    shipped = sorted(
        p.stem for p in (Path(__file__).resolve().parents[1] / "src/torchzoo/builtin_data/names").glob("*")
    )
    assert record["labels"] == shipped and len(shipped) == 18


def _cifar_batch(path: Path, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    batch = {
        b"batch_label": b"synthetic",
        b"labels": [i % 10 for i in range(n)],
        b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
        b"filenames": [f"{i}.png".encode() for i in range(n)],
    }
    path.write_bytes(pickle.dumps(batch, protocol=2))


def test_cifar10_uses_all_five_batches_when_present(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torchzoo.train import cifar
    from torchzoo.train.cifar import FAMILY, MODELS

    monkeypatch.setattr(cifar, "VALIDATION_SIZE", 100)  # small synthetic batches (the real split holds out 1,000)

    directory = tmp_path / "cifar-10-batches-py"
    directory.mkdir()
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    (directory / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}, protocol=2))
    _cifar_batch(directory / "test_batch", 50, 99)
    per_batch = 240
    _cifar_batch(directory / "data_batch_1", per_batch, 1)

    subset = FAMILY.load_data(MODELS[0], tmp_path, seed=0)
    info = FAMILY.dataset_info(MODELS[0], subset)
    assert info["name"] == "CIFAR-10 (subset)" and info["training_batches"] == ["data_batch_1"]
    assert info["official_files"] is False and "SUBSET" in info["caveat"]
    assert len(subset.train_index) + len(subset.val_index) == per_batch

    for i in range(2, 6):
        _cifar_batch(directory / f"data_batch_{i}", per_batch, i)
    full = FAMILY.load_data(MODELS[0], tmp_path, seed=0)
    info = FAMILY.dataset_info(MODELS[0], full)
    assert info["name"] == "CIFAR-10" and info["training_batches"] == [f"data_batch_{i}" for i in range(1, 6)]
    assert "SUBSET" not in info["caveat"] and "not the official files" in info["caveat"]
    assert info["train_images"] + info["validation_images"] == 5 * per_batch
    assert info["validation_images"] == 100 and info["test_images"] == 50
    # every batch's rows are in the training pool, in file order
    second = pickle.loads((directory / "data_batch_2").read_bytes())[b"data"]
    assert np.array_equal(full.data.train.images[per_batch : 2 * per_batch].reshape(per_batch, -1), second)


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, body in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


def test_archive_is_unpacked_file_by_file_verified_and_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CIFAR-10 path (archive -> cifar-10-batches-py/), on a synthetic archive with its own checksums."""
    from dataclasses import replace

    from torchzoo.data import download as dl
    from torchzoo.data.catalog import CIFAR10, Archive, DataFile

    for key in NO_PROXY_ENV:
        monkeypatch.delenv(key, raising=False)
    rng = np.random.default_rng(0)
    members = {f.name: rng.bytes(1000 + i) for i, f in enumerate(CIFAR10.files)}
    archive = _tar_gz({**members, "readme.html": b"<html></html>"})
    md5 = {name: f"md5:{hashlib.md5(body).hexdigest()}" for name, body in members.items()}
    dataset = replace(
        CIFAR10,
        files=tuple(DataFile(name, md5[name], len(body)) for name, body in members.items()),
        archive=Archive(
            CIFAR10.archive.filename, f"md5:{hashlib.md5(archive).hexdigest()}", len(archive), "cifar-10-batches-py"
        ),
    )
    directory = tmp_path / "cifar-10-batches-py"
    directory.mkdir()
    (directory / "data_batch_1").write_bytes(b"the 10k subset")  # replaced: its md5 is not the published one
    (directory / "batches.meta").write_bytes(members["batches.meta"])  # kept: already verified
    with MirrorServer({dataset.archive.filename: archive}) as server:
        rows = dl.download(dataset, tmp_path, dl.Fetcher(), mirror=server.url)
        actions = {Path(r["file"]).name: r["action"] for r in rows}
        assert actions["batches.meta"] == "verified" and actions[dataset.archive.filename] == "downloaded"
        assert actions["data_batch_1"] == actions["data_batch_5"] == f"extracted from {dataset.archive.filename}"
        assert sorted(p.name for p in _files_under(tmp_path)) == sorted(members)  # no archive, no .part, no readme
        assert all((directory / name).read_bytes() == body for name, body in members.items())

        # a member that does not match its published checksum is refused and never placed
        (directory / "test_batch").unlink()
        bad = replace(
            dataset, files=(*dataset.files[:5], DataFile("test_batch", "md5:" + "0" * 32, None), *dataset.files[6:])
        )
        with pytest.raises(dl.ChecksumError, match=r"test_batch: checksum mismatch, expected md5:0{32}, got md5:"):
            dl.download(bad, tmp_path, dl.Fetcher(), mirror=server.url)
    assert not (directory / "test_batch").exists() and not (directory / "test_batch.part").exists()


def test_a_stalled_transfer_times_out_and_is_resumed(
    tmp_path: Path, files: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    from torchzoo.data import download as dl

    for key in NO_PROXY_ENV:
        monkeypatch.delenv(key, raising=False)
    dest = tmp_path / BIG
    with MirrorServer(files) as server:
        server.stall.add(BIG)  # the first (full) request sends half, then nothing: the read times out
        row = dl.Fetcher(timeout=1.0, attempts=3, backoff=0.0).fetch(
            [f"{server.url}/{BIG}"], dest, MNIST.files[0].checksum
        )
    assert server.requests == [(BIG, None), (BIG, f"bytes={HALF}-")]
    assert row["action"] == "downloaded" and dest.read_bytes() == files[BIG]
    assert [p.name for p in _files_under(tmp_path)] == [BIG]


def test_the_data_roots_are_data_dir_else_the_variable_else_dot_data(monkeypatch: pytest.MonkeyPatch) -> None:
    from torchzoo.core.paths import data_root_candidates

    monkeypatch.delenv("TORCHZOO_DATA", raising=False)
    assert data_root_candidates() == [Path("data")]
    monkeypatch.setenv("TORCHZOO_DATA", "/srv/datasets")
    assert data_root_candidates() == [Path("/srv/datasets"), Path("data")]
    assert data_root_candidates("/explicit") == [Path("/explicit")]  # --data-dir is the only one searched


def test_the_download_command_named_in_errors_is_the_catalogs(tmp_path: Path) -> None:
    """core.paths names the command from its own table of data-root directories (core imports nothing of
    torchzoo.data); the catalog builds its datasets on the same table."""
    from torchzoo.core.paths import DATASET_DIRS, download_command
    from torchzoo.data.catalog import DATASETS, for_relative

    assert {d.name: d.relative for d in DATASETS.values()} == DATASET_DIRS
    for dataset in DATASETS.values():
        assert for_relative(dataset.relative) is dataset
        assert download_command(dataset.relative) == f"torchzoo data download {dataset.name}"
    assert download_command("MNIST/raw", tmp_path) == f"torchzoo data download mnist --data-dir {tmp_path}"
    assert download_command("celeba") is None


def test_a_data_root_with_names_wins_over_the_shipped_copy(tmp_path: Path) -> None:
    from torchzoo.core.paths import find_dataset
    from torchzoo.data.catalog import SHIPPED_ROOT

    assert find_dataset("names", "names", tmp_path) == SHIPPED_ROOT / "names"
    (tmp_path / "names").mkdir()
    assert find_dataset("names", "names", tmp_path) == tmp_path / "names"
