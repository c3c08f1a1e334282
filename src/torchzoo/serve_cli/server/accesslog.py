"""The structured access log: one JSON object per line per request, on stderr.

Lines are gathered in memory and written together every ``interval`` seconds and when the server stops, so
that a request costs no write of its own (``logging`` with a write per line was the largest cost of the
server's own code on a binary-tensor request, measured with cProfile under ``wrk``)."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any, TextIO


class AccessLog:
    def __init__(self, stream: TextIO | None = None, interval: float = 0.2) -> None:
        self.stream, self.interval = stream, interval
        self.lines: list[str] = []
        self.task: asyncio.Task | None = None

    def add(self, record: dict[str, Any]) -> None:
        self.lines.append(json.dumps(record))

    def flush(self) -> None:
        if self.lines:
            stream = self.stream or sys.stderr
            lines, self.lines = self.lines, []
            stream.write("\n".join(lines) + "\n")
            stream.flush()

    def start(self) -> None:
        async def every() -> None:
            while True:
                await asyncio.sleep(self.interval)
                self.flush()

        self.task = asyncio.get_running_loop().create_task(every())

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None
        self.flush()
