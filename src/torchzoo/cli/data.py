"""``torchzoo data download|list``: fetch the datasets into a data root, and show what each data root holds.

The only commands that touch the network; training reads what is on disk and, when a dataset is missing,
names the ``data download`` command that fetches it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from torchzoo.cli.options import DataDir, JsonFlag, choice
from torchzoo.cli.output import Output
from torchzoo.data.catalog import CHOICES

app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Fetch the datasets (the only command that downloads) and show where each one is.",
)
DatasetArg = Annotated[
    str,
    typer.Argument(parser=choice(CHOICES), metavar="[" + "|".join(CHOICES) + "]", help="Dataset to fetch, or all."),
]
TargetDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Data root to write (default: $TORCHZOO_DATA, else ./data).")
]
MirrorOpt = Annotated[
    str | None,
    typer.Option("--mirror", metavar="URL", help="Base URL of a mirror with the same layout (replaces the URLs)."),
]


def _size(n: int | None) -> str:
    if not n:
        return "-"
    if n < 1000:
        return f"{n} B"
    scaled, unit = next((n / 10**e, u) for e, u in ((9, "GB"), (6, "MB"), (3, "kB")) if n >= 10**e)
    return f"{scaled:,.1f} {unit}"


@app.command("download")
def download(
    dataset: DatasetArg = "all",
    data_dir: TargetDir = None,
    mirror: MirrorOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Fetch datasets, checking each file's published checksum.

    From each dataset's canonical URLs (or --mirror), resumed after an interruption, placed atomically.
    """
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from torchzoo.data import download as dl
    from torchzoo.data.catalog import resolve

    out = Output(as_json)
    root = dl.download_root(data_dir).resolve()
    datasets = resolve(dataset)
    for d in datasets:
        dl.base_urls(d, mirror)  # a bad --mirror is refused before anything is fetched
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    rows: list[dict[str, Any]] = []
    with Progress(*columns, console=out.err, transient=False) as progress:
        tasks: dict[str, Any] = {}
        current: list[Any] = [None]

        def on_start(name: str, total: int | None, done: int) -> None:
            if name not in tasks:
                tasks[name] = progress.add_task(name, total=total)
            progress.update(tasks[name], total=total, completed=done)
            current[0] = tasks[name]

        def on_advance(n: int) -> None:
            progress.advance(current[0], n)

        fetcher = dl.Fetcher(on_start=on_start, on_advance=on_advance)
        for d in datasets:
            for row in dl.download(d, root, fetcher, mirror):
                rows.append({"dataset": d.name, **row})
    data = {"data_root": str(root), "files": rows}
    out.result(
        data,
        lambda: out.table(
            f"datasets in {root} (every file verified against its published checksum)",
            ("dataset", "file", "action", "size"),
            [(r["dataset"], Path(r["file"]).name, r["action"], _size(Path(r["file"]).stat().st_size)) for r in rows],
        ),
    )


@app.command("list")
def list_datasets(data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """Where each dataset is, its size and checksum state.

    The directory the training commands would use, and its files against the published checksums.
    """
    from torchzoo.data.catalog import DATASETS
    from torchzoo.data.inventory import inspect

    out = Output(as_json)
    rows = [inspect(d, data_dir) for d in DATASETS.values()]

    def cells(r: dict[str, Any]) -> tuple[str, ...]:
        where = r["directory"] or "not found"
        state = r["state"] + (f" (fetch: {r['fetch']})" if r.get("fetch") else "")
        return (r["dataset"], r["found"], where, _size(r["bytes"]), state)

    out.result(
        rows,
        lambda: out.table("datasets", ("dataset", "found", "directory", "size", "checksums"), [cells(r) for r in rows]),
    )
