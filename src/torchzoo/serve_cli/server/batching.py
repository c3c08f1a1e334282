"""Dynamic batching: concurrent requests for one model are gathered into one onnxruntime run.

A worker per model takes the first queued request, then keeps gathering until ``max_batch`` samples or
``max_delay`` seconds have passed, runs each group of requests whose inputs stack (same trailing shapes)
as one batch in a worker thread, and hands every request its own rows of the outputs. With
``max_batch=1`` every request runs on its own, in a thread, as it arrives.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

Run = Callable[[Sequence[np.ndarray]], list[np.ndarray]]


@dataclass
class _Pending:
    arrays: tuple[np.ndarray, ...]
    future: asyncio.Future = field(repr=False)

    @property
    def samples(self) -> int:
        return int(self.arrays[0].shape[0])

    @property
    def key(self) -> tuple[tuple[int, ...], ...]:
        return tuple(a.shape[1:] for a in self.arrays)


class Batcher:
    def __init__(
        self,
        run: Run,
        max_batch: int,
        max_delay: float,
        on_batch: Callable[[int], None] | None = None,
        on_queue: Callable[[int], None] | None = None,
    ) -> None:
        self.run_fn, self.max_batch, self.max_delay = run, max_batch, max_delay
        self.on_batch = on_batch or (lambda size: None)
        self.on_queue = on_queue or (lambda depth: None)
        self.queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self.worker: asyncio.Task | None = None

    def start(self) -> None:
        if self.max_batch > 1 and self.worker is None:
            self.worker = asyncio.get_running_loop().create_task(self._work())

    async def stop(self) -> None:
        """Finish what is queued, then stop the worker."""
        if self.worker is not None:
            while not self.queue.empty():
                await asyncio.sleep(0.005)
            self.worker.cancel()
            self.worker = None

    async def run(self, arrays: tuple[np.ndarray, ...]) -> list[np.ndarray]:
        if self.max_batch <= 1:
            self.on_batch(int(arrays[0].shape[0]))
            return await asyncio.to_thread(self.run_fn, arrays)
        future = asyncio.get_running_loop().create_future()
        await self.queue.put(_Pending(arrays, future))
        self.on_queue(self.queue.qsize())
        return await future

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            pending = [await self.queue.get()]
            samples = pending[0].samples
            deadline = loop.time() + self.max_delay
            while samples < self.max_batch:
                try:
                    item = self.queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(self.queue.get(), remaining)
                    except TimeoutError:
                        break
                pending.append(item)
                samples += item.samples
            self.on_queue(self.queue.qsize())
            groups: dict[tuple, list[_Pending]] = defaultdict(list)
            for item in pending:
                groups[item.key].append(item)
            for group in groups.values():
                await self._run_group(group)

    async def _run_group(self, group: list[_Pending]) -> None:
        stacked = tuple(np.concatenate([p.arrays[i] for p in group]) for i in range(len(group[0].arrays)))
        self.on_batch(int(stacked[0].shape[0]))
        try:
            outputs = await asyncio.to_thread(self.run_fn, stacked)
        except Exception as exc:  # every request of the batch gets the error
            for item in group:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        start = 0
        for item in group:
            stop = start + item.samples
            if not item.future.done():
                item.future.set_result([out[start:stop] for out in outputs])
            start = stop
