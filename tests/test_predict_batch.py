"""``torchzoo predict-batch``: every JSONL row equals ``torchzoo predict --json`` for that input (plus its line or
file), bad inputs are rows with the error ``predict`` gives and do not stop the job, the Ray Data path writes the
same rows, bad arguments are one line and exit 2, and the output appears only when complete."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from support import ROOT, Zoo, run_cli


def _batch(zoo: Zoo, model: str, source: Path, output: Path, *extra: str, timeout: float = 300) -> tuple[int, dict]:
    result = run_cli(
        "predict-batch", model, str(source), "--output", str(output), "--json", *extra,
        "--artifacts-dir", str(zoo.exported(model)), timeout=timeout,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result.returncode, json.loads(result.stdout)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _predict(zoo: Zoo, model: str, value: str, *extra: str) -> dict:
    """What ``torchzoo predict MODEL VALUE --json`` answers: its one result, or its one-line error."""
    result = run_cli("predict", model, value, "--json", *extra, "--artifacts-dir", str(zoo.exported(model)))
    answer = json.loads(result.stdout)
    if result.returncode == 0:
        assert len(answer["results"]) == 1
        return answer["results"][0]
    assert result.returncode == 2, result.stdout + result.stderr
    return {"input": value, "error": answer["error"]}


def _without(row: dict, key: str) -> dict:
    return {k: v for k, v in row.items() if k != key}


NAMES = ["Rossi", "Nakamura", "", "R0ssi", "Dvořák", "Smith", "O'Neill"]


def test_names_file_rows_equal_predict_and_a_bad_line_does_not_stop_the_job(zoo: Zoo, tmp_path: Path) -> None:
    source = tmp_path / "names.txt"
    source.write_text("\n".join(NAMES) + "\n", encoding="utf-8")
    output = tmp_path / "rows.jsonl"
    code, summary = _batch(zoo, "names", source, output, "--batch-size", "3", "--top-k", "2")
    assert code == 1  # some rows failed; every row was still written
    assert (summary["rows"], summary["failed"], summary["ray"]) == (7, 2, False)
    rows = _rows(output)
    assert [r["line"] for r in rows] == list(range(1, 8))
    for name, row in zip(NAMES, rows, strict=True):
        assert _without(row, "line") == _predict(zoo, "names", name, "--top-k", "2")
    assert [r["line"] for r in rows if "error" in r] == [3, 4]
    assert "has no letters" in rows[2]["error"] and "'0'" in rows[3]["error"]
    assert [r["line"] for r in summary["first_errors"]] == [3, 4]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["names.txt", "rows.jsonl"]  # no temporary file left


def test_all_good_names_exit_0(zoo: Zoo, tmp_path: Path) -> None:
    source = tmp_path / "good.txt"
    source.write_text("Rossi\r\nSmith", encoding="utf-8")  # CRLF, no final newline
    code, summary = _batch(zoo, "names", source, tmp_path / "rows.jsonl")
    assert (code, summary["rows"], summary["failed"]) == (0, 2, 0)
    assert [r["input"] for r in _rows(tmp_path / "rows.jsonl")] == ["Rossi", "Smith"]


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Path:
    """Five MNIST test digits as PNG (one in a subfolder), a corrupt .png and a text file that is skipped."""
    from torchzoo.train.datasets import read_mnist

    test = read_mnist(data_root / "MNIST" / "raw").test
    folder = tmp_path_factory.mktemp("digits")
    (folder / "more").mkdir()
    for i in range(5):
        Image.fromarray(test.images[i]).save(folder / ("more" if i == 4 else ".") / f"digit_{i}.png")
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_image_directory_rows_equal_predict_and_a_corrupt_file_is_a_row(zoo: Zoo, digits: Path, tmp_path: Path) -> None:
    output = tmp_path / "digits.jsonl"
    code, summary = _batch(zoo, "mnist-mlp", digits, output, "--batch-size", "4")
    assert (code, summary["rows"], summary["failed"], summary["skipped_files"]) == (1, 6, 1, 1)
    rows = _rows(output)
    expected = ["corrupt.png", *(f"digit_{i}.png" for i in range(4)), "more/digit_4.png"]  # sorted, then more/
    assert [r["file"] for r in rows] == [str(digits / name) for name in expected]
    for row in rows:
        assert _without(row, "file") == _predict(zoo, "mnist-mlp", row["file"])
    assert rows[0]["error"].startswith(f"{digits / 'corrupt.png'} is not a readable image")
    assert all("label" in r for r in rows[1:])


def test_wine_csv_rows_equal_predict_and_bad_rows_name_their_line(zoo: Zoo, tmp_path: Path) -> None:
    from sklearn.datasets import load_wine

    wine = load_wine()
    good = [",".join(map(str, wine.data[i])) for i in (0, 60, 130)]
    lines = [",".join(wine.feature_names), good[0], "", good[1], "1,2,3", ",".join(["x"] * 13), good[2]]
    source = tmp_path / "wine.csv"
    source.write_text("\n".join(lines) + "\n")
    output = tmp_path / "wine.jsonl"
    code, summary = _batch(zoo, "wine", source, output)
    assert (code, summary["rows"], summary["failed"]) == (1, 5, 2)
    rows = _rows(output)
    assert [r["line"] for r in rows] == [2, 4, 5, 6, 7]  # the header (1) and the blank line (3) are not inputs
    for row in rows:
        assert _without(row, "line") == _predict(zoo, "wine", lines[row["line"] - 1])
    assert "has 3 values; the model takes 13" in rows[2]["error"] and "not a number" in rows[3]["error"]
    manifest = json.loads((zoo.exported("wine") / "wine" / "manifest.json").read_text())
    assert [manifest["labels"].index(r["label"]) for r in (rows[0], rows[1], rows[4])] == [0, 1, 2]


def test_ray_data_job_writes_the_same_rows_as_the_local_path(zoo: Zoo, digits: Path, tmp_path: Path) -> None:
    """A local Ray instance, 2 actors, a names file of 2,500 lines (3 read tasks: the line-range reads are
    stitched back in order) with bad lines among them: the JSONL is byte for byte the local one."""
    lines = [NAMES[i % len(NAMES)] for i in range(2500)]
    source = tmp_path / "names.txt"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    local, ray = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    code, summary = _batch(zoo, "names", source, local, "--batch-size", "100")
    ray_code, ray_summary = _batch(zoo, "names", source, ray, "--batch-size", "100", "--ray", "--actors", "2")
    assert ray.read_bytes() == local.read_bytes()
    assert (ray_code, ray_summary["rows"], ray_summary["failed"]) == (code, 2500, summary["failed"]) == (1, 2500, 714)
    assert ray_summary["ray"] is True and sum(ray_summary["ray_actors"].values()) == 2500


@pytest.mark.parametrize(
    ("model", "source", "extra", "says"),
    [
        ("nams", "names.txt", (), "no artifacts for 'nams'"),
        ("names", "missing.txt", (), "no such input"),
        ("names", "digits", (), "takes a text file of names"),
        ("mnist-mlp", "names.txt", (), "takes a directory of PNG/JPEG images"),
        ("wine", "digits", (), "takes a CSV file"),
        ("names", "names.txt", ("--address", "auto"), "--address only applies with --ray"),
        ("names", "empty.txt", (), "is empty"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    zoo: Zoo, digits: Path, tmp_path: Path, model: str, source: str, extra: tuple[str, ...], says: str
) -> None:
    (tmp_path / "names.txt").write_text("Rossi\n")
    (tmp_path / "empty.txt").write_text("")
    where = digits if source == "digits" else tmp_path / source
    output = tmp_path / "out.jsonl"
    root = zoo.exported("mnist-mlp" if model == "mnist-mlp" else "wine" if model == "wine" else "names")
    result = run_cli("predict-batch", model, str(where), "-o", str(output), *extra, "--artifacts-dir", str(root))
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("torchzoo: error:") and says in lines[0], result.stderr
    assert not output.exists()


def test_missing_output_directory_is_refused(zoo: Zoo, tmp_path: Path) -> None:
    (tmp_path / "names.txt").write_text("Rossi\n")
    result = run_cli(
        "predict-batch", "names", str(tmp_path / "names.txt"), "-o", str(tmp_path / "no" / "rows.jsonl"),
        "--artifacts-dir", str(zoo.exported("names")),
    )  # fmt: skip
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    assert "no such directory" in result.stderr


def test_a_killed_job_leaves_no_output_and_the_old_output_untouched(zoo: Zoo, tmp_path: Path) -> None:
    source = tmp_path / "many.txt"
    source.write_text("Rossi\nNakamura\n" * 200_000)
    output = tmp_path / "rows.jsonl"
    output.write_text("earlier complete result\n")
    process = subprocess.Popen(
        [sys.executable, "-c", "from torchzoo.cli import main; main()", "predict-batch", "names", str(source),
         "-o", str(output), "--artifacts-dir", str(zoo.exported("names"))],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(".rows.jsonl.*.part")):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.3)  # a few batches in
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130
    assert output.read_text() == "earlier complete result\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["many.txt", "rows.jsonl"]


def test_line_reading_chunks_and_edge_cases(tmp_path: Path) -> None:
    """The plan's chunks (what Ray read tasks read) give the same items as one pass; a BOM, CRLF, a missing
    final newline, a line that is not UTF-8 and an over-long line are handled line by line."""
    from torchzoo.serve_cli import batch

    source = tmp_path / "names.txt"
    source.write_bytes(
        b"\xef\xbb\xbfRossi\r\nSmith\n\xff\xfeoops\n" + b"a" * (batch.MAX_LINE_BYTES + 5) + b"\nLi\n\nLast"
    )
    whole = list(batch.plan_inputs("names_one_hot", str(source)).items())
    plan = batch.plan_inputs("names_one_hot", str(source), chunk_items=2)
    assert [c.lines for c in plan.chunks] == [2, 2, 2, 1] and plan.total == 7
    assert list(plan.items()) == whole
    assert [(i.where["line"], i.value) for i in whole if i.error is None] == [
        (1, "Rossi"), (2, "Smith"), (5, "Li"), (6, ""), (7, "Last"),
    ]  # fmt: skip
    assert "line 3 is not valid UTF-8" in whole[2].error and "line 4: longer than" in whole[3].error


def test_atomic_jsonl_writes_nothing_on_failure(tmp_path: Path) -> None:
    from torchzoo.serve_cli.batch import AtomicJsonl

    target = tmp_path / "rows.jsonl"
    with pytest.raises(RuntimeError), AtomicJsonl(target) as out:
        out.write("{}")
        assert not target.exists() and len(list(tmp_path.iterdir())) == 1  # only the hidden temporary file
        raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []
    with AtomicJsonl(target) as out:
        out.write('{"a":1}')
    assert target.read_text() == '{"a":1}\n' and list(tmp_path.iterdir()) == [target]
